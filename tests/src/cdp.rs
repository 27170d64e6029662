//! Headless Chromium driven over the DevTools protocol, for tests of pages the analyzer serves:
//! navigate, evaluate JavaScript (read the DOM, click), take a screenshot. The browser stays open
//! between calls, so a page can be watched while the test makes things happen (a live update).
//!
//! Chromium is Debian's `chromium` package (`scripts/setup.sh` installs it), or `$CASCADE_CHROMIUM`.
//! The DevTools WebSocket is spoken here with std only (text frames, masked from the client), which
//! is all the protocol needs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The Chromium binary, if this machine has one.
pub fn chromium_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CASCADE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file())
}

/// A headless Chromium with one page, killed on drop.
pub struct Browser {
    child: Child,
    ws: TcpStream,
    next_id: u64,
}

impl Browser {
    /// Starts `binary` headless with its profile in `dir`, at `width` x `height`.
    pub fn start(binary: &Path, dir: &Path, (width, height): (u32, u32)) -> anyhow::Result<Self> {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile)?;
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("chromium.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        match connect_page(&profile) {
            Ok(ws) => Ok(Self {
                child,
                ws,
                next_id: 0,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Calls a DevTools method; its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        send_text(&mut self.ws, msg.as_bytes())?;
        loop {
            let reply: Value = serde_json::from_slice(&read_message(&mut self.ws)?)?;
            if reply["id"] == id {
                if let Some(e) = reply.get("error") {
                    bail!("{method}: {e}");
                }
                return Ok(reply["result"].clone());
            }
        }
    }

    pub fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
        self.call("Page.navigate", json!({ "url": url })).map(drop)
    }

    /// Evaluates `expression` in the page (promises awaited); its value as JSON.
    pub fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("{expression}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// The page as PNG.
    pub fn screenshot(&mut self) -> anyhow::Result<Vec<u8>> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        base64_decode(r["data"].as_str().context("no screenshot data")?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's DevTools WebSocket, once Chromium wrote its port.
fn connect_page(profile: &Path) -> anyhow::Result<TcpStream> {
    let port_file = profile.join("DevToolsActivePort");
    let mut port = None;
    crate::eventually(Duration::from_secs(30), || {
        port = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<u16>().ok());
        port.is_some()
    })
    .map_err(|_| anyhow::anyhow!("Chromium wrote no DevToolsActivePort"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0)));
    let pages = json_list(addr)?;
    let url = pages
        .as_array()
        .and_then(|p| p.iter().find(|p| p["type"] == "page"))
        .and_then(|p| p["webSocketDebuggerUrl"].as_str())
        .context("no page in /json/list")?;
    let path = &url[url.find("/devtools/").context("odd DevTools URL")?..];
    handshake(addr, path)
}

/// `GET /json/list`, read by its Content-Length (DevTools keeps the connection open).
fn json_list(addr: SocketAddr) -> anyhow::Result<Value> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /json/list HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut r = BufReader::new(s);
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse()?;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

fn handshake(addr: SocketAddr, path: &str) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut status = String::new();
    r.read_line(&mut status)?;
    anyhow::ensure!(status.contains(" 101 "), "WebSocket refused: {status}");
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
    }
    Ok(s)
}

/// One text frame, masked (a client must mask).
fn send_text(s: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let mask = [0x5a, 0x17, 0xc3, 0x8e];
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&frame)
}

/// One whole message (continuation frames joined; the server does not mask).
fn read_message(s: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut msg = Vec::new();
    loop {
        let mut head = [0u8; 2];
        s.read_exact(&mut head)?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                s.read_exact(&mut b)?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                s.read_exact(&mut b)?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        anyhow::ensure!(len < 256 << 20, "frame of {len} bytes");
        let mut payload = vec![0u8; usize::try_from(len)?];
        s.read_exact(&mut payload)?;
        match head[0] & 0x0f {
            0x8 => bail!("DevTools closed the connection"),
            0x9 | 0xa => continue, // ping, pong
            _ => msg.extend_from_slice(&payload),
        }
        if head[0] & 0x80 != 0 {
            return Ok(msg);
        }
    }
}

fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    let value = |c: u8| -> anyhow::Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("not base64: {c}"),
        }
        .into())
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64_decode("aGVsbG8=").expect("valid"), b"hello");
        assert_eq!(super::base64_decode("aGk=").expect("valid"), b"hi");
        assert_eq!(super::base64_decode("YWJj").expect("valid"), b"abc");
        assert!(super::base64_decode("a*==").is_err());
    }
}
