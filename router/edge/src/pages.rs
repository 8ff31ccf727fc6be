//! Pages the edge serves itself: a folder of static files under a path (`--pages /dashboard/=DIR`), so a
//! browser page and the API it calls share one origin — no CORS, and the page's own strict content
//! security policy. The files are read once, at start, and held in memory: a request is answered from that
//! map or not at all, so no request path ever reaches the filesystem (no traversal, no symlink surprises),
//! and the folder is bounded ([`MAX_FILES`], [`MAX_BYTES`]).
//!
//! `PREFIX` answers the folder's `index.html` (`PREFIX` without its `/` is redirected to it). Answers carry
//! `Cache-Control: no-cache` (revalidated by `ETag`), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//! no-referrer` and a content security policy that allows the page's own scripts and styles and
//! connections to its own origin only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

/// Most files a pages folder may hold.
pub const MAX_FILES: usize = 256;
/// Most bytes all of them may hold together.
pub const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// The page's content security policy: its own origin for everything (`'self'` covers WebSockets to it).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// A folder served under a path: `PREFIX=DIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PagesRoute {
    /// Starts and ends with `/` (`/dashboard/`).
    pub prefix: String,
    pub dir: PathBuf,
}

impl FromStr for PagesRoute {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (prefix, dir) =
            s.split_once('=').ok_or_else(|| format!("`{s}` is not PREFIX=DIR (e.g. /dashboard/=./dashboard)"))?;
        let segments_ok = prefix.trim_matches('/').split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix == "/" || !segments_ok {
            return Err(format!("the prefix `{prefix}` must be a folder path such as /dashboard/"));
        }
        if prefix.starts_with("/graphql") || prefix.starts_with("/health") {
            return Err(format!("the prefix `{prefix}` is the edge's own"));
        }
        if dir.is_empty() {
            return Err(format!("`{s}` names no folder"));
        }
        Ok(Self { prefix: prefix.to_owned(), dir: PathBuf::from(dir) })
    }
}

struct File {
    body: axum::body::Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

/// Every pages folder's files, by their path as served.
#[derive(Default)]
pub struct Pages {
    files: HashMap<String, File>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").field("files", &self.files.keys().collect::<Vec<_>>()).finish()
    }
}

impl Pages {
    /// Reads every route's folder (recursively), refusing one that holds more than the bounds allow or a
    /// name that is not plain (`[A-Za-z0-9._-]`, no leading dot).
    pub fn load(routes: &[PagesRoute]) -> anyhow::Result<Self> {
        let mut pages = Pages::default();
        let mut total = 0u64;
        for route in routes {
            let mut found = Vec::new();
            walk(&route.dir, "", 0, &mut found)?;
            anyhow::ensure!(
                found.iter().any(|(name, _)| name == "index.html"),
                "the pages folder {} has no index.html",
                route.dir.display()
            );
            for (name, path) in found {
                anyhow::ensure!(pages.files.len() < MAX_FILES, "the pages folders hold more than {MAX_FILES} files");
                let size = std::fs::metadata(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.len();
                total += size;
                anyhow::ensure!(total <= MAX_BYTES, "the pages folders hold more than {MAX_BYTES} bytes");
                let body = std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                anyhow::ensure!(body.len() as u64 == size, "{} changed while it was read", path.display());
                let digest = xxhash_rust::xxh3::xxh3_64(&body);
                let file = File {
                    content_type: content_type(&name),
                    etag: HeaderValue::from_str(&format!("\"{digest:016x}\"")).expect("hex is a valid header"),
                    body: body.into(),
                };
                pages.files.insert(format!("{}{name}", route.prefix), file);
            }
        }
        Ok(pages)
    }

    /// The answer to a `GET`/`HEAD` of `path`, if it is a page's (none for any other path or method).
    pub fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        // A folder without its slash: redirected, so the page's relative links resolve under it.
        if !path.ends_with('/') && self.files.contains_key(&format!("{path}/index.html")) {
            let to = HeaderValue::from_str(&format!("{path}/")).ok()?;
            let resp = Response::builder().status(StatusCode::PERMANENT_REDIRECT).header(header::LOCATION, to);
            return Some(resp.body(Body::empty()).expect("a valid response"));
        }
        let file = self.files.get(path).or_else(|| self.files.get(&format!("{path}index.html")))?;
        let fresh = headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == file.etag);
        let mut resp = Response::builder()
            .header(header::CONTENT_TYPE, file.content_type)
            .header(header::ETAG, file.etag.clone())
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::REFERRER_POLICY, "no-referrer")
            .header(header::CONTENT_SECURITY_POLICY, CSP);
        let body = if fresh {
            resp = resp.status(StatusCode::NOT_MODIFIED);
            Body::empty()
        } else if method == Method::HEAD {
            resp = resp.header(header::CONTENT_LENGTH, file.body.len());
            Body::empty()
        } else {
            Body::from(file.body.clone())
        };
        Some(resp.body(body).expect("a valid response"))
    }
}

/// Collects the files under `dir` as (`path/relative/to/the/folder`, full path), at most four folders deep.
fn walk(dir: &Path, rel: &str, depth: usize, found: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    anyhow::ensure!(depth <= 4, "the pages folder nests deeper than four folders at {}", dir.display());
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("the pages folder {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden files, editors' backups and anything not plainly named are never served (nor fatal: a
        // `.DS_Store` or `app.js~` must not keep the public endpoint from starting).
        let plain = !name.starts_with('.')
            && !name.ends_with('~')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !plain {
            tracing::warn!(file = %entry.path().display(), "not served: not a plain file name");
            continue;
        }
        let kind = entry.file_type()?;
        let rel_name = format!("{rel}{name}");
        if kind.is_dir() {
            walk(&entry.path(), &format!("{rel_name}/"), depth + 1, found)?;
        } else if kind.is_file() {
            found.push((rel_name, entry.path()));
        } else {
            anyhow::bail!("`{name}` in {} is neither a file nor a folder", dir.display());
        }
        anyhow::ensure!(
            found.len() <= MAX_FILES,
            "the pages folder {} holds more than {MAX_FILES} files",
            dir.display()
        );
    }
    Ok(())
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("edge-pages-{}", uuid_like()));
        for (name, body) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    fn uuid_like() -> String {
        format!(
            "{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        )
    }

    #[test]
    fn a_folder_is_served_from_memory_under_its_prefix_and_nothing_else() {
        let dir = folder(&[("index.html", "<h1>hi</h1>"), ("app.js", "go()"), ("vendor/lib.js", "lib()")]);
        let route: PagesRoute = format!("/dashboard/={}", dir.display()).parse().unwrap();
        let pages = Pages::load(&[route]).unwrap();
        let get = |path: &str| pages.answer(&Method::GET, path, &HeaderMap::new());
        let index = get("/dashboard/").expect("the index");
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(index.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'self'"));
        let slashless = get("/dashboard").expect("the prefix without its slash");
        assert_eq!(slashless.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(slashless.headers()[header::LOCATION], "/dashboard/");
        assert_eq!(get("/dashboard/app.js").unwrap().headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(get("/dashboard/vendor/lib.js").is_some());
        for outside in ["/dashboard/../Cargo.toml", "/dashboard/missing.js", "/other/index.html", "/dashboard/vendor/"]
        {
            assert!(get(outside).is_none(), "{outside} is not a page");
        }
        assert!(pages.answer(&Method::POST, "/dashboard/", &HeaderMap::new()).is_none());
        // Revalidation by ETag.
        let etag = index.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(pages.answer(&Method::GET, "/dashboard/", &headers).unwrap().status(), StatusCode::NOT_MODIFIED);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_routes_and_folders_are_refused_at_start_and_hidden_files_never_served() {
        for bad in ["dashboard/=x", "/dashboard=x", "/=x", "/graphql/=x", "/a/../b/=x", "/dashboard/="] {
            assert!(bad.parse::<PagesRoute>().is_err(), "{bad}");
        }
        let no_index = folder(&[("app.js", "")]);
        let route: PagesRoute = format!("/d/={}", no_index.display()).parse().unwrap();
        assert!(Pages::load(&[route]).unwrap_err().to_string().contains("index.html"));
        let hidden = folder(&[("index.html", ""), (".env", "SECRET=1"), ("app.js~", "old")]);
        let route: PagesRoute = format!("/d/={}", hidden.display()).parse().unwrap();
        let pages = Pages::load(&[route]).expect("hidden files and backups are skipped, not fatal");
        for skipped in ["/d/.env", "/d/app.js~"] {
            assert!(pages.answer(&Method::GET, skipped, &HeaderMap::new()).is_none(), "{skipped} is not served");
        }
        std::fs::remove_dir_all(no_index).unwrap();
        std::fs::remove_dir_all(hidden).unwrap();
    }
}
