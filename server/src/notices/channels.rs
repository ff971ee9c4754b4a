//! The ways a notice leaves the server: e-mail through an SMTP relay (`lettre`), SMS through an
//! HTTP gateway whose request the Questura describes (Italian providers each have their own API),
//! and the `log` channel, which sends nothing and leaves the notice on `/admin/notices` (the
//! demo, or a Questura with no gateway yet). A kind of contact with no channel configured goes to
//! the log. Another channel (a messaging app's business API) is one more [`Channel`].
//!
//! Configured in the TOML file's `[notices]` table; secrets (the SMTP password, the gateway's
//! key) are named by the environment variable that holds them, never written in the file.

use std::{collections::BTreeMap, time::Duration};

use lettre::{
    Message, SmtpTransport, Transport,
    message::{
        Mailbox,
        header::{ContentType, HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};
use serde::Deserialize;

/// How long a gateway may take before the attempt counts as failed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The `[notices]` table of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesConfig {
    /// Notices handed to each gateway a minute at most (default 60).
    pub per_minute: Option<u32>,
    /// The address people reach this server at (`https://prenota.example.it`): the opt-out link
    /// in e-mails starts with it. Without it e-mails carry no link (STOP replies still work).
    pub public_url: Option<String>,
    pub email: Option<EmailConfig>,
    pub sms: Option<SmsConfig>,
}

/// An SMTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    /// Default: 587 with `starttls`, 465 with `tls`, 25 with `none`.
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    pub username: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    /// `Questura di Pavia <noreply@example.it>`.
    pub from: String,
    pub timeout_seconds: Option<u64>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine or in the tests.
    None,
}

/// An HTTP SMS gateway: the request to make for each message. Placeholders: `{to}` (the number,
/// `+39…`), `{text}`, `{id}` (the same for every attempt at one notice: the gateway's idempotency
/// key where it has one) and `{secret}` (from `secret_env`); in the body they are escaped as
/// `encoding` says, in the URL percent-encoded, in headers as they are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub url: String,
    #[serde(default = "post")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub encoding: BodyEncoding,
    /// The environment variable that holds the gateway's key, for `{secret}`.
    pub secret_env: Option<String>,
    /// The environment variable that holds the token the gateway adds (`?token=`) to the replies
    /// it forwards to `POST /api/v1/notices/sms-reply`; without it replies are refused.
    pub reply_token_env: Option<String>,
    pub timeout_seconds: Option<u64>,
}

fn post() -> String {
    "POST".into()
}

/// How placeholder values are written into the gateway's request body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// Inside JSON strings: `{"to": "{to}", "text": "{text}"}`.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`: `to={to}&text={text}`.
    Form,
    /// As they are.
    Raw,
}

/// One notice on its way out.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The same for every attempt at this notice.
    pub key: String,
    /// `sms` or `email`.
    pub channel: String,
    pub recipient: String,
    pub body: String,
    /// Where the person stops the messages (e-mails only).
    pub stop_url: Option<String>,
}

/// Where notices go. `send` may block (it runs on the blocking pool) and must give up within
/// its own timeout.
pub trait Channel: Send + Sync {
    /// What the administration page says a notice went through: `log`, `smtp`, `http`.
    fn name(&self) -> &'static str;
    fn send(&self, notice: &Outgoing) -> Result<(), String>;
}

/// Nothing leaves the server: the notice is recorded as sent and shown to the administration.
pub struct LogChannel;

impl Channel for LogChannel {
    fn name(&self) -> &'static str {
        "log"
    }

    fn send(&self, notice: &Outgoing) -> Result<(), String> {
        // Identifiers only in the log: never the recipient or the text.
        tracing::debug!(
            channel = notice.channel,
            "notice kept for the administration page"
        );
        Ok(())
    }
}

/// E-mail through an SMTP relay.
pub struct SmtpChannel {
    transport: SmtpTransport,
    from: Mailbox,
}

impl SmtpChannel {
    pub fn new(config: &EmailConfig) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("[notices.email] from «{}»: {e}", config.from))?;
        let tls = || TlsParameters::new(config.host.clone());
        let (tls, port) = match config.security {
            Security::Starttls => (Tls::Required(tls()?), 587),
            Security::Tls => (Tls::Wrapper(tls()?), 465),
            Security::None => (Tls::None, 25),
        };
        let mut builder = SmtpTransport::builder_dangerous(config.host.clone())
            .port(config.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(
                config
                    .timeout_seconds
                    .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            ));
        if let Some(user) = &config.username {
            let password = secret(
                config.password_env.as_deref(),
                "[notices.email] password_env",
            )?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

impl Channel for SmtpChannel {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send(&self, notice: &Outgoing) -> Result<(), String> {
        let to: Mailbox = notice
            .recipient
            .parse()
            .map_err(|e| format!("indirizzo non valido: {e}"))?;
        let domain = self.from.email.domain().to_owned();
        let mut body = notice.body.clone();
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject(&notice.body))
            // The same id at every attempt: a receiver that sees it twice can tell.
            .message_id(Some(format!("<{}@{domain}>", notice.key)));
        if let Some(url) = &notice.stop_url {
            body.push_str(&format!(
                "\n\n--\nNon ricevere più messaggi / Stop these messages: {url}"
            ));
            // RFC 8058: mail programs offer a one-click "unsubscribe" that posts to the link.
            message = message
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let email = message
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("messaggio non componibile: {e}"))?;
        self.transport
            .send(&email)
            .map(drop)
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// The subject of an e-mail: the first line of the message, cut at a word near 70 characters.
fn subject(body: &str) -> String {
    let first = body.lines().next().unwrap_or_default();
    if first.chars().count() <= 70 {
        return first.to_owned();
    }
    let cut: String = first.chars().take(70).collect();
    match cut.rfind(' ') {
        Some(space) => format!("{}…", &cut[..space]),
        None => format!("{cut}…"),
    }
}

/// SMS through an HTTP gateway.
pub struct HttpSmsChannel {
    config: SmsConfig,
    secret: String,
    agent: ureq::Agent,
}

/// The placeholders a gateway's request may use.
const SMS_PLACEHOLDERS: [&str; 4] = ["to", "text", "id", "secret"];

impl HttpSmsChannel {
    pub fn new(config: &SmsConfig) -> anyhow::Result<Self> {
        let method = config.method.to_ascii_uppercase();
        anyhow::ensure!(
            ["GET", "POST", "PUT"].contains(&method.as_str()),
            "[notices.sms] method «{}»: GET, POST or PUT",
            config.method
        );
        for (what, text) in std::iter::once(("url", &config.url))
            .chain(std::iter::once(("body", &config.body)))
            .chain(config.headers.values().map(|v| ("headers", v)))
        {
            for name in placeholder_names(text) {
                anyhow::ensure!(
                    SMS_PLACEHOLDERS.contains(&name),
                    "[notices.sms] {what}: unknown placeholder {{{name}}} (known: to, text, id, secret)"
                );
            }
        }
        let everything = format!("{}{}", config.url, config.body);
        for needed in ["to", "text"] {
            anyhow::ensure!(
                placeholder_names(&everything).any(|n| n == needed),
                "[notices.sms] the url or the body must contain {{{needed}}}"
            );
        }
        let secret = match &config.secret_env {
            Some(_) => secret(config.secret_env.as_deref(), "[notices.sms] secret_env")?,
            None => String::new(),
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(
                config
                    .timeout_seconds
                    .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            ))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            config: config.clone(),
            secret,
            agent,
        })
    }

    /// The request for `notice`: method, URL, headers, body.
    fn request(&self, notice: &Outgoing) -> (String, String, Vec<(String, String)>, String) {
        let values = |escape: &dyn Fn(&str) -> String| {
            [
                ("to", escape(&notice.recipient)),
                ("text", escape(&notice.body)),
                ("id", escape(&notice.key)),
                ("secret", escape(&self.secret)),
            ]
        };
        let url = fill(&self.config.url, &values(&percent));
        let body = match self.config.encoding {
            BodyEncoding::Json => fill(&self.config.body, &values(&json_inner)),
            BodyEncoding::Form => fill(&self.config.body, &values(&percent)),
            BodyEncoding::Raw => fill(&self.config.body, &values(&|v| v.to_owned())),
        };
        let mut headers: Vec<(String, String)> = self
            .config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, &values(&|v| v.to_owned()))))
            .collect();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            let kind = match self.config.encoding {
                BodyEncoding::Json => "application/json",
                BodyEncoding::Form => "application/x-www-form-urlencoded",
                BodyEncoding::Raw => "text/plain; charset=utf-8",
            };
            headers.push(("Content-Type".into(), kind.into()));
        }
        (self.config.method.to_ascii_uppercase(), url, headers, body)
    }
}

impl Channel for HttpSmsChannel {
    fn name(&self) -> &'static str {
        "http"
    }

    fn send(&self, notice: &Outgoing) -> Result<(), String> {
        let (method, url, headers, body) = self.request(notice);
        let mut request = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request
            .body(if method == "GET" { String::new() } else { body })
            .map_err(|e| format!("richiesta non valida: {e}"))?;
        let response = self
            .agent
            .run(request)
            .map_err(|e| format!("gateway SMS non raggiungibile: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("il gateway SMS ha risposto {status}"))
        }
    }
}

/// The names in braces of `text`.
fn placeholder_names(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        // `{"to": …}` in a JSON body is not a placeholder.
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()))
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

fn percent(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `value` as the inside of a JSON string.
fn json_inner(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serialises");
    quoted[1..quoted.len() - 1].to_owned()
}

/// The value of the environment variable `name` names.
fn secret(name: Option<&str>, what: &str) -> anyhow::Result<String> {
    let name = name.ok_or_else(|| anyhow::anyhow!("{what} is needed"))?;
    std::env::var(name).map_err(|_| anyhow::anyhow!("{what}: the variable {name} is not set"))
}

/// Every channel, by kind of contact.
pub struct Channels {
    pub email: Box<dyn Channel>,
    pub sms: Box<dyn Channel>,
}

impl Channels {
    /// The log for both: nothing leaves the server.
    pub fn log() -> Self {
        Self {
            email: Box::new(LogChannel),
            sms: Box::new(LogChannel),
        }
    }

    /// What `config` describes; the log where it describes nothing.
    pub fn from_config(config: &NoticesConfig) -> anyhow::Result<Self> {
        Ok(Self {
            email: match &config.email {
                Some(email) => Box::new(SmtpChannel::new(email)?),
                None => Box::new(LogChannel),
            },
            sms: match &config.sms {
                Some(sms) => Box::new(HttpSmsChannel::new(sms)?),
                None => Box::new(LogChannel),
            },
        })
    }

    pub fn of(&self, channel: &str) -> &dyn Channel {
        match channel {
            "email" => self.email.as_ref(),
            _ => self.sms.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(body: &str, encoding: BodyEncoding) -> HttpSmsChannel {
        HttpSmsChannel::new(&SmsConfig {
            url: "http://127.0.0.1:9/send?to={to}".into(),
            method: "POST".into(),
            headers: BTreeMap::from([("Idempotency-Key".into(), "{id}".into())]),
            body: body.into(),
            encoding,
            secret_env: None,
            reply_token_env: None,
            timeout_seconds: None,
        })
        .unwrap()
    }

    fn notice() -> Outgoing {
        Outgoing {
            key: "coper-notice-7".into(),
            channel: "sms".into(),
            recipient: "+393331234567".into(),
            body: "Codice \"AB\" & più\nسلام".into(),
            stop_url: None,
        }
    }

    #[test]
    fn placeholders_are_escaped_for_where_they_stand() {
        let (method, url, headers, body) = gateway(
            r#"{"to": "{to}", "text": "{text}", "ref": "{id}"}"#,
            BodyEncoding::Json,
        )
        .request(&notice());
        assert_eq!(method, "POST");
        assert_eq!(url, "http://127.0.0.1:9/send?to=%2B393331234567");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["text"], notice().body);
        assert_eq!(parsed["ref"], "coper-notice-7");
        assert!(headers.contains(&("Idempotency-Key".into(), "coper-notice-7".into())));
        assert!(headers.contains(&("Content-Type".into(), "application/json".into())));

        let (_, _, _, form) = gateway("to={to}&text={text}", BodyEncoding::Form).request(&notice());
        let pairs: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs[1], ("text".into(), notice().body));
    }

    #[test]
    fn a_gateway_request_without_the_number_or_with_an_unknown_placeholder_is_refused() {
        let mut config = SmsConfig {
            url: "http://127.0.0.1:9/send".into(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body: r#"{"text": "{text}"}"#.into(),
            encoding: BodyEncoding::Json,
            secret_env: None,
            reply_token_env: None,
            timeout_seconds: None,
        };
        let err = HttpSmsChannel::new(&config).err().unwrap().to_string();
        assert!(err.contains("{to}"), "{err}");
        config.body = r#"{"to": "{to}", "text": "{testo}"}"#.into();
        let err = HttpSmsChannel::new(&config).err().unwrap().to_string();
        assert!(err.contains("{testo}"), "{err}");
        config.method = "DELETE".into();
        assert!(HttpSmsChannel::new(&config).is_err());
    }

    #[test]
    fn an_unreachable_gateway_is_an_error_not_a_hang() {
        let channel = HttpSmsChannel::new(&SmsConfig {
            timeout_seconds: Some(2),
            ..gateway("to={to}&text={text}", BodyEncoding::Form).config
        })
        .unwrap();
        let err = channel.send(&notice()).unwrap_err();
        assert!(err.contains("non raggiungibile"), "{err}");
    }

    #[test]
    fn the_subject_is_the_first_line_cut_at_a_word() {
        assert_eq!(subject("Breve\nseconda"), "Breve");
        let long = "parola ".repeat(20);
        let cut = subject(&long);
        assert!(
            cut.ends_with("parola…") && cut.chars().count() <= 71,
            "{cut}"
        );
    }
}
