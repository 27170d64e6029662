//! What the agent stores and sends for a person: the wire message built from a detection, its
//! crop and the model that found it, and the buffer record that holds it (the camera's sequence
//! number is given inside the buffer's transaction).

use std::cell::Cell;
use std::rc::Rc;

use cascade_shared::manifest::ModelManifest;
use cascade_shared::wire::{Compression, Crop, TrackEvent};

use crate::buffer::NewRecord;
use crate::crop::JpegCrop;
use crate::track::Upload;

/// Where a crop comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub device_id: &'a str,
    pub camera_id: &'a str,
    pub model: &'a ModelManifest,
}

/// The frame a crop was cut from.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    pub width: usize,
    pub height: usize,
    /// UTC capture time, microseconds.
    pub capture_us: i64,
}

/// The wire message for one crop (sequence 0: the buffer assigns it).
pub fn crop_message(o: &Origin<'_>, f: FrameInfo, up: &Upload, crop: JpegCrop) -> Crop {
    Crop {
        crop_region: Some(crop.region),
        jpeg: crop.jpeg,
        event: TrackEvent::Crop as i32,
        ..word_message(o, f, up)
    }
}

/// The wire message for a word about a track (`seen`, `ended`): its last box, no picture.
pub fn word_message(o: &Origin<'_>, f: FrameInfo, up: &Upload) -> Crop {
    Crop {
        message_id: uuid::Uuid::now_v7().to_string(),
        device_id: o.device_id.to_string(),
        camera_id: o.camera_id.to_string(),
        sequence: 0,
        capture_time_us: f.capture_us,
        frame_width: f.width as u32,
        frame_height: f.height as u32,
        r#box: Some(up.det.bbox),
        crop_region: None,
        class_id: up.det.class_id,
        class_name: o
            .model
            .labels
            .get(up.det.class_id as usize)
            .cloned()
            .unwrap_or_default(),
        score: up.det.score,
        model_name: o.model.name.clone(),
        model_version: o.model.version.clone(),
        track_id: up.track_id,
        jpeg: Vec::new(),
        event: up.event as i32,
    }
}

/// A buffer record for `msg`: encoded once its sequence number is known; the stored size is added
/// to `stored_bytes`.
pub fn new_record<'a>(
    camera: &'a str,
    msg: Crop,
    compression: Compression,
    stored_bytes: Rc<Cell<usize>>,
) -> NewRecord<'a> {
    NewRecord {
        camera,
        build: Box::new(move |sequence| {
            let stored = crate::uplink::store_crop(&Crop { sequence, ..msg }, compression);
            stored_bytes.set(stored_bytes.get() + stored.len());
            stored
        }),
    }
}
