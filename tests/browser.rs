//! A real browser for the end-to-end tests: Debian's headless Chromium driven through
//! ChromeDriver's W3C WebDriver HTTP API (plain JSON over reqwest, no driver crate).
//!
//! Each [`Browser`] starts its own `chromedriver` on a free port and its own Chromium with an empty
//! profile, so two browsers are two independent users (two clerks at two counters). Chromium is
//! started with the flags this sandbox needs (no sandbox as root, no background networking, which
//! the closed network would refuse). `scripts/install-deps` installs `chromium` and
//! `chromium-driver`.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// WebDriver's name for an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The WebDriver key code for Enter, as a scanner ends its input.
pub const ENTER: &str = "\u{E007}";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Start ChromeDriver and a headless Chromium session.
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver is not installed: run scripts/install-deps (Debian: chromium chromium-driver)",
            );
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", "--window-size=1280,1000",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}
        });
        let created: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("create a WebDriver session")
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Self {
            driver,
            base,
            session,
            client,
            _profile: profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut request = self.client.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("WebDriver answers")
            .json()
            .await
            .unwrap();
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element matching `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .post("/element", json!({ "using": "css selector", "value": css }))
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            if Instant::now() >= deadline {
                let page = self
                    .post(
                        "/execute/sync",
                        json!({ "script": "return location.href + '\\n' + document.body.innerText.slice(0, 1500);", "args": [] }),
                    )
                    .await;
                panic!(
                    "no element {css} on the page:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Type `text` into the element matching `css`, as a keyboard (or a scanner) does.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    /// Type into whatever has the focus (what a USB scanner does).
    pub async fn type_into_focus(&self, text: &str) {
        let active = self
            .command(reqwest::Method::GET, "/element/active", None)
            .await;
        let id = active[ELEMENT].as_str().expect("an element has the focus");
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        let answer = self.post(&format!("/element/{id}/click"), json!({})).await;
        assert!(
            answer.is_null() || answer.get("error").is_none(),
            "clicking {css}: {answer}"
        );
    }

    /// Click the element matching `css` (a submit button, a link) and wait until the next page
    /// has replaced this one.
    pub async fn click_and_wait_for_page(&self, css: &str) {
        self.script("document.documentElement.dataset.coperOld = '1';")
            .await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let replaced = self
                .script(
                    "return document.readyState === 'complete' \
                     && document.documentElement.dataset.coperOld === undefined;",
                )
                .await;
            if replaced == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Make the window `width` × `height` CSS pixels (a phone: 360 × 740).
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// The WCAG 2.0 and 2.1 A and AA violations axe-core finds on the page as it is now: one
    /// line per rule, with the elements that break it. (axe-core is vendored in
    /// `tests/vendor/axe-core/` and injected here; pages never load it.)
    pub async fn axe(&self) -> Vec<String> {
        static AXE: &str = include_str!("vendor/axe-core/axe.min.js");
        self.post("/execute/sync", json!({ "script": AXE, "args": [] }))
            .await;
        let found = self
            .post(
                "/execute/async",
                json!({ "script": "const done = arguments[arguments.length - 1];
                    axe.run(document, { runOnly: { type: 'tag',
                        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                    .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): '
                        + v.nodes.map(n => n.target.join(' ')).join(', '))))
                    .catch(e => done(['axe failed: ' + e]));", "args": [] }),
            )
            .await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("axe answered {found}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Whether the page scrolls sideways at the window's width (WCAG 1.4.10, reflow).
    pub async fn scrolls_sideways(&self) -> bool {
        self.script("return document.documentElement.scrollWidth > window.innerWidth;")
            .await
            == Value::Bool(true)
    }

    /// Save what the window shows as a PNG.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let bytes = base64_decode::decode(png.as_str().unwrap_or_default());
        std::fs::write(path, bytes).expect("write the screenshot");
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.command(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Run a script in the page and return its result.
    pub async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Wait until `script` returns `true` in the page, for at most `seconds`.
    pub async fn wait_for_script(&self, script: &str, seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while self.script(script).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait up to `seconds` for the element matching `css` to contain `expected`.
    pub async fn wait_for_text(&self, css: &str, expected: &str, seconds: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let text = self.text(css).await;
            if text.contains(expected) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed «{expected}»; it shows «{text}»"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Log in on the staff login page of `app_base`.
    pub async fn log_in(&self, app_base: &str, username: &str, password: &str) {
        self.goto(&format!("{app_base}/staff/login")).await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        // The login answers with a redirect: wait for the page it leads to.
        self.click_and_wait_for_page("#login-submit").await;
    }
}

impl Browser {
    /// End the session (Chromium exits), then the driver.
    pub async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.client.delete(url).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base 64 (WebDriver's screenshots), decoded; tiny, so no crate for it.
mod base64_decode {
    pub fn decode(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        };
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for v in text.bytes().filter_map(value) {
            buffer = (buffer << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        out
    }
}
