//! `POST /api/v1/notices/sms-reply`: where an SMS gateway forwards the replies people send. A
//! reply that says STOP (or BASTA, ANNULLA…) puts the sender on the opt-out list and withdraws
//! what was waiting for them; anything else is acknowledged and dropped (replies are not read by
//! anyone). The gateway proves itself with `?token=` (the secret of `[notices.sms]
//! reply_token_env`); without one configured the route answers 404.
//!
//! Gateways name their fields differently: the sender is read from `from`, `sender`, `msisdn`
//! or `phone`, the text from `text`, `message` or `body`, in a form or a JSON body.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, header},
};
use serde::{Deserialize, Serialize};

use super::{ApiQuery, AppState, error::ApiError};
use crate::store;

#[derive(Debug, Deserialize)]
pub struct ReplyToken {
    #[serde(default)]
    token: String,
}

#[derive(Debug, Serialize)]
pub struct ReplyOutcome {
    /// Whether the sender was put on the opt-out list.
    stopped: bool,
}

/// The field called one of `names` in `body` (JSON object or form).
fn field(body: &[u8], json: bool, names: &[&str]) -> Option<String> {
    if json {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        names
            .iter()
            .find_map(|n| value.get(n)?.as_str().map(str::to_owned))
    } else {
        form_urlencoded::parse(body)
            .find(|(k, _)| names.contains(&k.as_ref()))
            .map(|(_, v)| v.into_owned())
    }
}

/// The sender's number as the opt-out list keeps it: `+` and digits (gateways often drop the `+`).
fn sender_number(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let with_plus = if digits.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else {
        format!("+{digits}")
    };
    coper_shared::contact::phone(&with_plus).ok()
}

pub async fn sms_reply(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReplyToken>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReplyOutcome>, ApiError> {
    let Some(expected) = state.sender.reply_token.as_deref() else {
        return Err(ApiError::NotFound);
    };
    // Compared whole, in time independent of where they differ.
    let same = q.token.len() == expected.len()
        && q.token
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(ApiError::bad_request(
            "bad_token",
            "token del gateway mancante o errato",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let from = field(&body, json, &["from", "sender", "msisdn", "phone"]);
    let text = field(&body, json, &["text", "message", "body"]).unwrap_or_default();
    let Some(number) = from.as_deref().and_then(sender_number) else {
        return Err(ApiError::bad_request(
            "bad_sender",
            "numero del mittente mancante o non valido",
        ));
    };
    if !coper_shared::notices::is_stop_reply(&text) {
        return Ok(Json(ReplyOutcome { stopped: false }));
    }
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            store::notices::opt_out(&tx, "sms", &number, "stop_reply", now)?;
            tx.commit()?;
            Ok::<_, store::StoreError>(())
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(ReplyOutcome { stopped: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_read_under_the_names_gateways_use() {
        let form = b"msisdn=393331234567&message=STOP";
        assert_eq!(
            field(form, false, &["from", "msisdn"]).unwrap(),
            "393331234567"
        );
        let json = br#"{"sender": "+39 333 1234567", "text": "stop"}"#;
        assert_eq!(
            field(json, true, &["from", "sender"]).unwrap(),
            "+39 333 1234567"
        );
        assert_eq!(sender_number("393331234567").unwrap(), "+393331234567");
        assert_eq!(sender_number("0039 333 1234567").unwrap(), "+393331234567");
        assert!(sender_number("abc").is_none());
    }
}
