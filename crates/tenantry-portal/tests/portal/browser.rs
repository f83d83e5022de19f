//! Headless Chromium through chromedriver (WebDriver, `fantoccini`): one
//! fresh browser profile per person, downloads into a directory of its
//! own, and the flags that keep Chromium off the network it does not have.

use crate::world::{Person, World};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Browser {
    pub client: Client,
    pub downloads: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn open(world: &World) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).map_err(|e| e.to_string())?;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        // Keycloak's certificate comes from the test CA, which this profile does
        // not know; the portal itself verifies the issuer against that CA.
        capabilities.insert("acceptInsecureCerts".into(), json!(true));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": crate::world::CHROMIUM,
                "args": [
                    "--headless=new", "--hide-scrollbars", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--no-default-browser-check", "--disable-default-apps",
                    "--disable-extensions", "--metrics-recording-only", "--password-store=basic",
                    // A shell script is a "dangerous" download that waits for a confirmation click.
                    "--safebrowsing-disable-download-protection",
                    "--window-size=1280,1000", format!("--user-data-dir={}", profile.path().join("chrome").display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                    "safebrowsing.enabled": false,
                    "safebrowsing.disable_download_protection": true,
                    // Three downloads from one page: allow more than the first without asking.
                    "profile.default_content_setting_values.automatic_downloads": 1,
                },
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut client = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.is_none() {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&world.driver_url)
                .await
            {
                Ok(c) => client = Some(c),
                Err(e) if Instant::now() > deadline => return Err(format!("chromedriver did not start Chromium: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        let client = client.ok_or("no browser")?;
        Ok(Browser { client, downloads, _profile: profile })
    }

    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.client.goto(url).await.map_err(|e| format!("goto {url}: {e}"))
    }

    pub async fn path(&self) -> Result<String, String> {
        let url = self.client.current_url().await.map_err(|e| e.to_string())?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    pub async fn url(&self) -> Result<url::Url, String> {
        self.client.current_url().await.map_err(|e| e.to_string())
    }

    pub async fn text(&self, css: &str) -> Result<String, String> {
        let element = self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
        element.map_err(|e| format!("no `{css}`: {e}"))?.text().await.map_err(|e| e.to_string())
    }

    pub async fn texts(&self, css: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.map_err(|e| e.to_string())? {
            out.push(element.text().await.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    pub async fn body(&self) -> Result<String, String> {
        self.text("body").await
    }

    pub async fn click(&self, css: &str) -> Result<(), String> {
        let element = self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
        element.map_err(|e| format!("no `{css}`: {e}"))?.click().await.map_err(|e| format!("click `{css}`: {e}"))
    }

    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let element = self.client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
        element.map_err(|e| format!("no `{css}`: {e}"))?.send_keys(text).await.map_err(|e| e.to_string())
    }

    /// Wait until the page's path starts with `prefix` (navigation after a click or redirect).
    pub async fn wait_path(&self, prefix: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let path = self.path().await?;
            let host_ok = self.url().await?.host_str() == Some("127.0.0.1");
            if host_ok && path.starts_with(prefix) {
                return Ok(path);
            }
            if Instant::now() > deadline {
                return Err(format!("expected to arrive at {prefix}, still at {}", self.url().await?));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the page into target/portal-screenshots/NAME.png.
    pub async fn screenshot(&self, world: &World, name: &str) -> Result<PathBuf, String> {
        let png = self.client.screenshot().await.map_err(|e| e.to_string())?;
        let path = world.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// A full-length PNG: the window is made as tall as the page first.
    /// Fails when, at this width, the page or a table in it scrolls sideways.
    pub async fn screenshot_full(&self, world: &World, name: &str, width: u32) -> Result<PathBuf, String> {
        self.client.set_window_size(width, 1000).await.map_err(|e| e.to_string())?;
        let overflow = self
            .client
            .execute(
                "const doc = document.documentElement;
                 const wide = [...document.querySelectorAll('.scroll, table')]
                   .filter(e => e.scrollWidth > e.clientWidth + 1)
                   .map(e => (e.querySelector('caption, thead th') || e).textContent.trim().slice(0, 40));
                 return { page: doc.scrollWidth > doc.clientWidth + 1, wide };",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if overflow["page"] == true || overflow["wide"].as_array().is_some_and(|w| !w.is_empty()) {
            return Err(format!("{name}: at {width} px the page scrolls sideways: {overflow}"));
        }
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .map_err(|e| e.to_string())?
            .as_u64()
            .unwrap_or(1000);
        self.client.set_window_size(width, (height as u32).clamp(600, 8000) + 140).await.map_err(|e| e.to_string())?;
        let path = self.screenshot(world, name).await;
        self.client.set_window_size(1280, 1000).await.map_err(|e| e.to_string())?;
        path
    }

    /// Sign in on Keycloak's form (the browser must be on it).
    pub async fn keycloak_form(&self, person: &Person) -> Result<(), String> {
        self.type_into("#username", &person.login).await?;
        self.type_into("#password", &person.password).await?;
        self.click("#kc-login").await
    }

    /// The whole sign-in: open `path`, get sent to /signin, follow the
    /// sign-in link to Keycloak, type the credentials, land on `path`.
    pub async fn sign_in(&self, world: &World, person: &Person, path: &str) -> Result<(), String> {
        self.goto(&world.url(path)).await?;
        self.wait_path("/signin").await?;
        self.click("a.button").await?;
        let on_keycloak = || async { self.url().await.map(|u| u.as_str().starts_with(&world.keycloak.url)) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !on_keycloak().await? && !self.path().await?.starts_with(path) {
            if Instant::now() > deadline {
                return Err(format!("not sent to Keycloak: at {}", self.url().await?));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if on_keycloak().await? {
            self.keycloak_form(person).await?;
        }
        self.wait_path(path).await.map(drop)
    }

    /// The portal's session cookie, as `name=value`.
    pub async fn session_cookie(&self) -> Result<String, String> {
        let cookie = self.client.get_named_cookie("tenantry_portal").await.map_err(|e| e.to_string())?;
        Ok(format!("{}={}", cookie.name(), cookie.value()))
    }

    /// The file that appears in the download directory (waits for Chromium to finish it).
    pub async fn downloaded(&self, name: &str) -> Result<PathBuf, String> {
        let path = self.downloads.join(name);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let partial = std::fs::read_dir(&self.downloads)
                .map_err(|e| e.to_string())?
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
            if path.is_file() && !partial {
                return Ok(path);
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = std::fs::read_dir(&self.downloads)
                    .map_err(|e| e.to_string())?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect();
                return Err(format!("{name} was not downloaded; the directory holds {seen:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Whether `path` is a file with this content.
pub fn file_is(path: &Path, expected: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text == expected)
}
