//! `[detector.edgetpu]`: where the Edge TPU runtime is and which Edge TPU to use, for profiles
//! whose accelerator is `edge_tpu` (Coral Dev Board, USB Accelerator, M.2/PCIe cards).

use std::path::PathBuf;

use serde::Deserialize;

use crate::Problems;

/// `[detector.edgetpu]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeTpuConfig {
    /// `libedgetpu.so.1`. Default: `$EDGETPU_LIB_PATH`, then the places Coral's Debian package
    /// `libedgetpu1-std` installs it (`/usr/lib/<arch>-linux-gnu/`, `/usr/lib/`).
    pub library: Option<PathBuf>,
    /// Which Edge TPU: `usb`, `pci`, `usb:N` / `pci:N` (the N-th of that kind), or a device path
    /// as the runtime lists it (`/dev/apex_0`). Default: the first one found.
    pub device: Option<String>,
}

/// A parsed `device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeTpuDevice {
    /// The `index`-th device of a kind (`usb` or `pci`).
    Kind { usb: bool, index: usize },
    /// A device path as the runtime lists it.
    Path(String),
}

impl EdgeTpuConfig {
    pub(super) fn validate(&self, p: &mut Problems) {
        if let Some(d) = &self.device
            && let Err(why) = parse_device(d)
        {
            p.push("detector.edgetpu.device", why);
        }
    }

    /// The device asked for; `None`: the first found.
    pub fn device(&self) -> Option<EdgeTpuDevice> {
        self.device.as_deref().and_then(|d| parse_device(d).ok())
    }
}

/// `usb`, `pci`, `usb:N`, `pci:N` or an absolute path.
pub fn parse_device(s: &str) -> Result<EdgeTpuDevice, String> {
    if s.starts_with('/') {
        return Ok(EdgeTpuDevice::Path(s.to_string()));
    }
    let (kind, index) = s.split_once(':').unwrap_or((s, "0"));
    let usb = match kind {
        "usb" => true,
        "pci" => false,
        _ => {
            return Err(format!(
                "{s:?}: use usb, pci, usb:N, pci:N or a device path"
            ));
        }
    };
    let index = index
        .parse()
        .map_err(|_| format!("{s:?}: the index after ':' must be a number"))?;
    Ok(EdgeTpuDevice::Kind { usb, index })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_by_kind_index_or_path() {
        assert_eq!(
            parse_device("usb"),
            Ok(EdgeTpuDevice::Kind {
                usb: true,
                index: 0
            })
        );
        assert_eq!(
            parse_device("pci:1"),
            Ok(EdgeTpuDevice::Kind {
                usb: false,
                index: 1
            })
        );
        assert_eq!(
            parse_device("/dev/apex_0"),
            Ok(EdgeTpuDevice::Path("/dev/apex_0".into()))
        );
        assert!(parse_device("tpu").is_err());
        assert!(parse_device("usb:x").is_err());
        let mut p = Problems::new();
        EdgeTpuConfig {
            library: None,
            device: Some("m2".into()),
        }
        .validate(&mut p);
        assert!(p.to_string().contains("detector.edgetpu.device"), "{p}");
    }
}
