//! The KServe v2 (Open Inference) protocol's REST bodies: server and model metadata, and infer
//! requests and responses, as JSON tensors or with the binary tensor data extension (a JSON
//! header of `Inference-Header-Content-Length` bytes, then each tensor's little-endian bytes).
//! Pure functions over bytes; the HTTP is in `http.rs`.

use std::fmt::Write as _;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};

/// `GET /v2`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerMetadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub extensions: Vec<String>,
}

impl ServerMetadata {
    /// Whether the server takes and gives tensors as binary data.
    pub fn binary_tensors(&self) -> bool {
        self.extensions.iter().any(|e| e == "binary_tensor_data")
    }
}

/// One tensor of `GET /v2/models/{name}`: `-1` marks a dynamic dimension.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelMetadata {
    pub name: String,
    #[serde(default)]
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// An infer request's body and its extra header (`Inference-Header-Content-Length` when binary).
#[derive(Debug)]
pub struct RequestBody {
    pub bytes: Vec<u8>,
    pub header_len: Option<usize>,
}

/// An FP32 input tensor `name` of `shape`, asking for `outputs`.
pub fn infer_request(
    input: &str,
    shape: &[usize],
    data: &[f32],
    outputs: &[String],
    binary: bool,
) -> RequestBody {
    let mut json = String::with_capacity(if binary { 256 } else { data.len() * 11 + 256 });
    json.push_str("{\"inputs\":[{\"name\":");
    json.push_str(&quote(input));
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let _ = write!(
        json,
        ",\"shape\":[{}],\"datatype\":\"FP32\"",
        dims.join(",")
    );
    if binary {
        let _ = write!(
            json,
            ",\"parameters\":{{\"binary_data_size\":{}}}}}]",
            data.len() * 4
        );
    } else {
        json.push_str(",\"data\":[");
        for (i, v) in data.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            // Display writes the shortest text that reads back to the same f32.
            let _ = write!(json, "{v}");
        }
        json.push_str("]}]");
    }
    json.push_str(",\"outputs\":[");
    for (i, o) in outputs.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let params = if binary {
            ",\"parameters\":{\"binary_data\":true}"
        } else {
            ""
        };
        let _ = write!(json, "{{\"name\":{}{params}}}", quote(o));
    }
    json.push_str("]}");
    if !binary {
        return RequestBody {
            bytes: json.into_bytes(),
            header_len: None,
        };
    }
    let header_len = json.len();
    let mut bytes = json.into_bytes();
    bytes.reserve(data.len() * 4);
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    RequestBody {
        bytes,
        header_len: Some(header_len),
    }
}

fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// One output of a response, as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    outputs: Vec<RawOutput>,
}

#[derive(Debug, Deserialize)]
struct RawOutput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Parameters>,
    #[serde(default)]
    data: Option<Flat>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    #[serde(default)]
    binary_data_size: Option<usize>,
}

/// Tensor data as one flat `Vec<f32>`, whether the server nests it by dimension or not.
#[derive(Debug, Default)]
struct Flat(Vec<f32>);

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        d.deserialize_seq(FlatVisitor(&mut out))?;
        Ok(Flat(out))
    }
}

struct FlatVisitor<'a>(&'a mut Vec<f32>);

/// One element: a number, or a nested list flattened into the same vector.
struct Element<'a>(&'a mut Vec<f32>);

impl<'de> serde::de::DeserializeSeed<'de> for Element<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(FlatVisitor(self.0))
    }
}

impl<'de> Visitor<'de> for FlatVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number or a list of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Element(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }
}

/// Decodes an infer response: all JSON, or (`header_len` given) a JSON header followed by the
/// binary outputs in order. Each output's element count must match its shape.
pub fn infer_response(body: &[u8], header_len: Option<usize>) -> Result<Vec<Output>, String> {
    let (json, mut rest) = match header_len {
        Some(n) if n <= body.len() => body.split_at(n),
        Some(n) => {
            return Err(format!(
                "Inference-Header-Content-Length {n} exceeds the body's {} bytes",
                body.len()
            ));
        }
        None => (body, &[][..]),
    };
    let resp: Response =
        serde_json::from_slice(json).map_err(|e| format!("infer response: {e}"))?;
    let mut out = Vec::with_capacity(resp.outputs.len());
    for o in resp.outputs {
        let count = o
            .shape
            .iter()
            .try_fold(1usize, |n, &d| {
                usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
            })
            .ok_or_else(|| format!("output {}: bad shape {:?}", o.name, o.shape))?;
        let binary = o.parameters.as_ref().and_then(|p| p.binary_data_size);
        let data = match (binary, o.data) {
            (Some(size), _) => {
                if o.datatype != "FP32" {
                    return Err(format!(
                        "output {}: binary {} data; FP32 is supported",
                        o.name, o.datatype
                    ));
                }
                if size > rest.len() || size != count * 4 {
                    return Err(format!(
                        "output {}: {size} binary bytes for shape {:?} ({} left)",
                        o.name,
                        o.shape,
                        rest.len()
                    ));
                }
                let (mine, next) = rest.split_at(size);
                rest = next;
                mine.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            }
            (None, Some(Flat(d))) => d,
            (None, None) => return Err(format!("output {}: no data", o.name)),
        };
        if data.len() != count {
            return Err(format!(
                "output {}: {} values for shape {:?}",
                o.name,
                data.len(),
                o.shape
            ));
        }
        out.push(Output {
            name: o.name,
            shape: o.shape,
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_request_round_trips_through_serde() {
        let body = infer_request("images", &[1, 2], &[0.5, 1.0 / 3.0], &["out".into()], false);
        assert_eq!(body.header_len, None);
        let v: serde_json::Value = serde_json::from_slice(&body.bytes).expect("json");
        assert_eq!(v["inputs"][0]["name"], "images");
        assert_eq!(v["inputs"][0]["shape"], serde_json::json!([1, 2]));
        assert_eq!(v["inputs"][0]["datatype"], "FP32");
        let back = v["inputs"][0]["data"][1].as_f64().expect("number") as f32;
        assert_eq!(back, 1.0 / 3.0, "exact after the text round trip");
        assert_eq!(v["outputs"][0]["name"], "out");
    }

    #[test]
    fn a_binary_request_has_a_json_header_then_little_endian_floats() {
        let body = infer_request("in\"x", &[2], &[1.0, -2.5], &["o".into()], true);
        let n = body.header_len.expect("binary");
        let v: serde_json::Value = serde_json::from_slice(&body.bytes[..n]).expect("header");
        assert_eq!(v["inputs"][0]["name"], "in\"x");
        assert_eq!(v["inputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(v["outputs"][0]["parameters"]["binary_data"], true);
        assert_eq!(&body.bytes[n..n + 4], &1.0f32.to_le_bytes());
        assert_eq!(&body.bytes[n + 4..], &(-2.5f32).to_le_bytes());
    }

    #[test]
    fn json_responses_flat_or_nested_decode_to_flat_f32() {
        let flat = br#"{"model_name":"m","outputs":[{"name":"a","shape":[1,2,2],"datatype":"FP32","data":[1,2.5,3,4]}]}"#;
        let nested = br#"{"outputs":[{"name":"a","shape":[1,2,2],"datatype":"FP32","data":[[[1,2.5],[3,4]]]}]}"#;
        for body in [&flat[..], &nested[..]] {
            let out = infer_response(body, None).expect("decodes");
            assert_eq!(out[0].data, vec![1.0, 2.5, 3.0, 4.0]);
            assert_eq!(out[0].shape, vec![1, 2, 2]);
        }
        let short = br#"{"outputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2]}]}"#;
        let e = infer_response(short, None).expect_err("short");
        assert!(e.contains("2 values for shape [1, 3]"), "{e}");
    }

    #[test]
    fn binary_responses_are_split_by_their_sizes() {
        let header = br#"{"outputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}},{"name":"b","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#;
        let mut body = header.to_vec();
        for v in [7.0f32, 8.0, 9.0] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        let out = infer_response(&body, Some(header.len())).expect("decodes");
        assert_eq!(
            (out[0].data.clone(), out[1].data.clone()),
            (vec![7.0], vec![8.0, 9.0])
        );
        let e = infer_response(&body[..body.len() - 1], Some(header.len())).expect_err("cut");
        assert!(e.contains("output b"), "{e}");
        assert!(infer_response(&body, Some(body.len() + 1)).is_err());
    }

    #[test]
    fn metadata_reads_dynamic_dimensions_and_extensions() {
        let m: ModelMetadata = serde_json::from_str(
            r#"{"name":"blob","versions":[],"platform":"","inputs":[{"name":"images","datatype":"FP32","shape":[-1,3,128,128]}],"outputs":[{"name":"output0","datatype":"FP32","shape":[-1,6,2]}],"parameters":{}}"#,
        )
        .expect("metadata");
        assert_eq!(m.inputs[0].shape, vec![-1, 3, 128, 128]);
        let s: ServerMetadata = serde_json::from_str(
            r#"{"name":"triton","version":"2","extensions":["binary_tensor_data"]}"#,
        )
        .expect("server");
        assert!(s.binary_tensors());
        let s: ServerMetadata =
            serde_json::from_str(r#"{"name":"mlserver","version":"1.7.1","extensions":[]}"#)
                .expect("server");
        assert!(!s.binary_tensors());
    }
}
