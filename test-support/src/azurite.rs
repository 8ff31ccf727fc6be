//! Azurite, the Azure Blob emulator, started for a test: its own process on a free port with its own data
//! folder, one container created, both gone when the handle drops.
//!
//! The binary is the one `test-support/azurite/install.sh` installs (pinned in its `package-lock.json`;
//! `scripts/test` runs it); the script is run here too when the binary is missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;

/// Azurite's well-known development account and key (public, in Microsoft's documentation).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: tokio::process::Child,
    dir: PathBuf,
    /// The account's endpoint, `http://127.0.0.1:<port>/devstoreaccount1`.
    pub endpoint: String,
    pub container: String,
}

impl Azurite {
    /// Starts Azurite and creates `container`.
    pub async fn start(container: &str) -> Azurite {
        let bin = installed().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("cp-azurite-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = tokio::process::Command::new(&bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"])
            .arg(&dir)
            .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let azurite =
            Azurite { child, dir, endpoint: format!("http://127.0.0.1:{port}/{ACCOUNT}"), container: container.into() };
        crate::eventually("Azurite to listen", Duration::from_secs(30), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        azurite.create_container().await;
        azurite
    }

    /// `PUT /<account>/<container>?restype=container`, signed with the account key (Shared Key).
    async fn create_container(&self) {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{}\nrestype:container",
            self.container
        );
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &base64::engine::general_purpose::STANDARD.decode(KEY).unwrap(),
        );
        let signature =
            base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let response = reqwest::Client::new()
            .put(format!("{}/{}?restype=container", self.endpoint, self.container))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("content-length", "0")
            .header("authorization", format!("SharedKey {ACCOUNT}:{signature}"))
            .send()
            .await
            .expect("Azurite answers");
        let status = response.status();
        assert!(
            status.is_success() || status.as_u16() == 409,
            "creating container {}: {status} {}",
            self.container,
            response.text().await.unwrap_or_default()
        );
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `azurite-blob` binary, installed by the script if it is not yet.
async fn installed() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("azurite/install.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed (Node.js 20+ and npm are needed)", script.display());
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
