//! The crop message on the wire (schema in `shared/proto/cascade/v1/crop.proto`).
//!
//! Decoding untrusted bytes never panics and bounds every size, the decompressed size included.
//! The prost structs below are written by hand to match the `.proto` (no `protoc` at build time);
//! keep field numbers in step with it.

use prost::Message;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// Largest envelope accepted from the wire.
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
/// Largest encoded [`Crop`] accepted, after decompression.
pub const MAX_CROP_BYTES: usize = 4 * 1024 * 1024;
/// Largest JPEG accepted inside a crop.
pub const MAX_JPEG_BYTES: usize = 3 * 1024 * 1024;
/// Largest frame side accepted in a crop's metadata.
pub const MAX_FRAME_SIDE: u32 = 16_384;
const MAX_TEXT_LEN: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BodyEncoding {
    Raw = 0,
    Zstd = 1,
}

/// What a message says about its track: a crop of the person, or a small word without a picture
/// (so an alert ends when the person leaves, not when a cloud timer runs out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum TrackEvent {
    /// A crop of the person: `jpeg` and `crop_region` are set.
    Crop = 0,
    /// The track is still in view: keeps its alert open. No JPEG.
    Seen = 1,
    /// The track left the view (the tracker lost it): ends its alert. No JPEG.
    Ended = 2,
}

impl TrackEvent {
    /// A short, stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Crop => "crop",
            Self::Seen => "seen",
            Self::Ended => "ended",
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct CropEnvelope {
    #[prost(uint32, tag = "1")]
    pub schema_version: u32,
    #[prost(enumeration = "BodyEncoding", tag = "2")]
    pub encoding: i32,
    #[prost(uint32, tag = "3")]
    pub uncompressed_size: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub body: Vec<u8>,
    #[prost(int64, tag = "5")]
    pub upload_time_us: i64,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct BoxPx {
    #[prost(float, tag = "1")]
    pub x1: f32,
    #[prost(float, tag = "2")]
    pub y1: f32,
    #[prost(float, tag = "3")]
    pub x2: f32,
    #[prost(float, tag = "4")]
    pub y2: f32,
}

impl BoxPx {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// The area both boxes cover (0 when apart).
    pub fn intersection(&self, o: &Self) -> f32 {
        let w = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let h = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        w * h
    }

    /// Intersection over union, 0 for boxes without area.
    pub fn iou(&self, o: &Self) -> f32 {
        let inter = self.intersection(o);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    fn is_valid_in(&self, w: u32, h: u32) -> bool {
        let (w, h) = (w as f32, h as f32);
        [self.x1, self.y1, self.x2, self.y2]
            .iter()
            .all(|v| v.is_finite())
            && self.x1 >= 0.0
            && self.y1 >= 0.0
            && self.x2 <= w
            && self.y2 <= h
            && self.x1 < self.x2
            && self.y1 < self.y2
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Crop {
    #[prost(string, tag = "1")]
    pub message_id: String,
    #[prost(string, tag = "2")]
    pub device_id: String,
    #[prost(string, tag = "3")]
    pub camera_id: String,
    #[prost(uint64, tag = "4")]
    pub sequence: u64,
    #[prost(int64, tag = "5")]
    pub capture_time_us: i64,
    #[prost(uint32, tag = "6")]
    pub frame_width: u32,
    #[prost(uint32, tag = "7")]
    pub frame_height: u32,
    #[prost(message, optional, tag = "8")]
    pub r#box: Option<BoxPx>,
    #[prost(message, optional, tag = "9")]
    pub crop_region: Option<BoxPx>,
    #[prost(uint32, tag = "10")]
    pub class_id: u32,
    #[prost(string, tag = "11")]
    pub class_name: String,
    #[prost(float, tag = "12")]
    pub score: f32,
    #[prost(string, tag = "13")]
    pub model_name: String,
    #[prost(string, tag = "14")]
    pub model_version: String,
    #[prost(uint64, tag = "15")]
    pub track_id: u64,
    #[prost(bytes = "vec", tag = "16")]
    pub jpeg: Vec<u8>,
    /// A [`TrackEvent`]; absent (0) on the wire is a crop, as before this field existed.
    #[prost(enumeration = "TrackEvent", tag = "17")]
    pub event: i32,
}

/// Why a payload was refused. Each variant names the reason label used in metrics.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("payload of {0} bytes exceeds the {MAX_ENVELOPE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("envelope is not valid protobuf: {0}")]
    Envelope(String),
    #[error("unsupported schema version {0} (this build reads {SCHEMA_VERSION})")]
    SchemaVersion(u32),
    #[error("unknown body encoding {0}")]
    Encoding(i32),
    #[error("declared body size {0} exceeds the {MAX_CROP_BYTES}-byte limit")]
    BodyTooLarge(u64),
    #[error("zstd body does not decompress to its declared {declared} bytes: {reason}")]
    Decompress { declared: u32, reason: String },
    #[error("raw body is {actual} bytes but declares {declared}")]
    SizeMismatch { declared: u32, actual: usize },
    #[error("crop is not valid protobuf: {0}")]
    Crop(String),
    #[error("invalid field {field}: {reason}")]
    Field { field: &'static str, reason: String },
}

impl WireError {
    /// A short, stable label for metrics (`reason="..."`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge(_) | Self::BodyTooLarge(_) => "too_large",
            Self::Envelope(_) | Self::Crop(_) | Self::SizeMismatch { .. } => "malformed",
            Self::SchemaVersion(_) => "schema_version",
            Self::Encoding(_) => "encoding",
            Self::Decompress { .. } => "decompress",
            Self::Field { .. } => "invalid_field",
        }
    }
}

/// When the sender compresses the body with zstd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Never (the default: JPEG crops do not shrink, see design/wire-protocol.md).
    None,
    /// Always, at level 3.
    Zstd,
    /// Compress, and keep it only when it saves at least 5 %.
    Auto,
}

/// A crop encoded once, ready to be wrapped in an envelope for each send.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedBody {
    pub encoding: BodyEncoding,
    pub uncompressed_size: u32,
    pub body: Vec<u8>,
}

impl Crop {
    /// Encodes the crop as an envelope body under the given compression policy.
    pub fn encode_body(&self, compression: Compression) -> EncodedBody {
        let raw = self.encode_to_vec();
        let size = u32::try_from(raw.len()).unwrap_or(u32::MAX);
        let packed = match compression {
            Compression::None => None,
            Compression::Zstd => zstd::bulk::compress(&raw, 3).ok(),
            Compression::Auto => zstd::bulk::compress(&raw, 3)
                .ok()
                .filter(|z| z.len() * 100 <= raw.len() * 95),
        };
        match packed {
            Some(body) => EncodedBody {
                encoding: BodyEncoding::Zstd,
                uncompressed_size: size,
                body,
            },
            None => EncodedBody {
                encoding: BodyEncoding::Raw,
                uncompressed_size: size,
                body: raw,
            },
        }
    }

    /// Checks every field a receiver relies on.
    pub fn validate(&self) -> Result<(), WireError> {
        let field = |field: &'static str, reason: String| Err(WireError::Field { field, reason });
        for (name, id) in [
            ("message_id", &self.message_id),
            ("device_id", &self.device_id),
            ("camera_id", &self.camera_id),
        ] {
            if !crate::topics::valid_id(id) {
                return field(
                    name,
                    format!("{id:?} is not 1-64 characters of A-Z a-z 0-9 - _ ."),
                );
            }
            if name == "device_id" && !crate::topics::valid_device_id(id) {
                return field(name, format!("{id:?} is a reserved word"));
            }
        }
        for (name, text) in [
            ("class_name", &self.class_name),
            ("model_name", &self.model_name),
            ("model_version", &self.model_version),
        ] {
            if text.len() > MAX_TEXT_LEN {
                return field(name, format!("{} bytes is over {MAX_TEXT_LEN}", text.len()));
            }
        }
        let (w, h) = (self.frame_width, self.frame_height);
        if w == 0 || h == 0 || w > MAX_FRAME_SIDE || h > MAX_FRAME_SIDE {
            return field(
                "frame_width/frame_height",
                format!("{w}x{h} is out of range"),
            );
        }
        let Ok(event) = TrackEvent::try_from(self.event) else {
            return field(
                "event",
                format!("{} is not a known track event", self.event),
            );
        };
        let is_crop = event == TrackEvent::Crop;
        for (name, b, required) in [
            ("box", &self.r#box, true),
            ("crop_region", &self.crop_region, is_crop),
        ] {
            match b {
                Some(b) if b.is_valid_in(w, h) => {}
                Some(b) => return field(name, format!("{b:?} is not inside the {w}x{h} frame")),
                None if required => return field(name, "missing".into()),
                None => {}
            }
        }
        if !(0.0..=1.0).contains(&self.score) {
            return field("score", format!("{} is not within 0..=1", self.score));
        }
        self.validate_jpeg(is_crop)
    }

    /// A crop carries a JPEG of 1 to [`MAX_JPEG_BYTES`]; a track word carries none.
    fn validate_jpeg(&self, is_crop: bool) -> Result<(), WireError> {
        let n = self.jpeg.len();
        let reason = if is_crop && (n == 0 || n > MAX_JPEG_BYTES) {
            format!("{n} bytes is not within 1..={MAX_JPEG_BYTES}")
        } else if !is_crop && n > 0 {
            format!("{n} bytes on a track message, which carries no picture")
        } else {
            return Ok(());
        };
        Err(WireError::Field {
            field: "jpeg",
            reason,
        })
    }

    /// What the message says about its track (a crop, for a value no build knows: [`Self::validate`]
    /// refuses those).
    pub fn track_event(&self) -> TrackEvent {
        TrackEvent::try_from(self.event).unwrap_or(TrackEvent::Crop)
    }
}

impl CropEnvelope {
    pub fn wrap(body: &EncodedBody, upload_time_us: i64) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            encoding: body.encoding as i32,
            uncompressed_size: body.uncompressed_size,
            body: body.body.clone(),
            upload_time_us,
        }
    }
}

/// Decodes and validates an envelope and its crop from untrusted bytes.
pub fn decode(bytes: &[u8]) -> Result<(CropEnvelope, Crop), WireError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let env = CropEnvelope::decode(bytes).map_err(|e| WireError::Envelope(e.to_string()))?;
    if env.schema_version != SCHEMA_VERSION {
        return Err(WireError::SchemaVersion(env.schema_version));
    }
    let declared = env.uncompressed_size;
    if declared as usize > MAX_CROP_BYTES {
        return Err(WireError::BodyTooLarge(u64::from(declared)));
    }
    let crop_bytes = match BodyEncoding::try_from(env.encoding) {
        Ok(BodyEncoding::Raw) if env.body.len() == declared as usize => None,
        Ok(BodyEncoding::Raw) => {
            return Err(WireError::SizeMismatch {
                declared,
                actual: env.body.len(),
            });
        }
        Ok(BodyEncoding::Zstd) => Some(decompress_bounded(&env.body, declared)?),
        Err(_) => return Err(WireError::Encoding(env.encoding)),
    };
    let crop = Crop::decode(crop_bytes.as_deref().unwrap_or(&env.body))
        .map_err(|e| WireError::Crop(e.to_string()))?;
    crop.validate()?;
    Ok((env, crop))
}

/// Decompresses at most `declared` bytes; more, fewer, or a broken frame is an error.
fn decompress_bounded(body: &[u8], declared: u32) -> Result<Vec<u8>, WireError> {
    let err = |reason: String| WireError::Decompress { declared, reason };
    // `bulk::decompress` never allocates or writes more than the given capacity.
    let out = zstd::bulk::decompress(body, declared as usize).map_err(|e| err(e.to_string()))?;
    if out.len() != declared as usize {
        return Err(err(format!("got {} bytes", out.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
