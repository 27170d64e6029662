//! Just enough of an H.264 sequence parameter set parser to refuse interlaced streams clearly and
//! report the coded size. Untrusted bytes: every read is bounds-checked, every loop bounded.

/// What the decoder needs to know from an SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    pub width: u32,
    pub height: u32,
    /// `frame_mbs_only_flag == 0`: the stream may carry field pictures (interlaced).
    pub interlaced: bool,
}

struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    /// Removes emulation-prevention bytes (00 00 03 -> 00 00).
    fn new(rbsp: &[u8]) -> Self {
        let mut data = Vec::with_capacity(rbsp.len());
        let mut zeros = 0;
        for &b in rbsp {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)).min(u64::from(u32::MAX)) as u32)
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

fn skip_scaling_list(b: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + b.se()? + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Parses an SPS NAL unit (header byte included). `None` if it is not one or is malformed.
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    if nal.first()? & 0x1F != 7 {
        return None;
    }
    let mut b = Bits::new(&nal[1..]);
    let profile_idc = b.bits(8)? as u8;
    b.bits(16)?; // constraint flags, level_idc
    b.ue()?; // seq_parameter_set_id
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma_format_idc = b.ue()?;
        if chroma_format_idc == 3 {
            b.bit()?;
        }
        b.ue()?; // bit_depth_luma_minus8
        b.ue()?; // bit_depth_chroma_minus8
        b.bit()?; // qpprime_y_zero_transform_bypass_flag
        if b.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => {
            b.ue()?;
        }
        1 => {
            b.bit()?;
            b.se()?;
            b.se()?;
            let cycle = b.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = b.ue()?.checked_add(1)?;
    let height_map_units = b.ue()?.checked_add(1)?;
    let frame_mbs_only = b.bit()? == 1;
    let height_mbs = height_map_units.checked_mul(if frame_mbs_only { 1 } else { 2 })?;
    Some(SpsInfo {
        profile_idc,
        width: width_mbs.checked_mul(16)?,
        height: height_mbs.checked_mul(16)?,
        interlaced: !frame_mbs_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::split_nal_units;

    fn first_sps(stream: &[u8]) -> SpsInfo {
        let nal = split_nal_units(stream)
            .into_iter()
            .find(|n| n[0] & 0x1F == 7)
            .expect("has an SPS");
        parse_sps(nal).expect("parses")
    }

    #[test]
    fn reads_progressive_main_profile_clip() {
        let info = first_sps(include_bytes!("../../../tests/fixtures/walker.h264"));
        assert_eq!(
            (info.profile_idc, info.width, info.height, info.interlaced),
            (77, 320, 240, false)
        );
    }

    #[test]
    fn detects_interlaced_clip() {
        let info = first_sps(include_bytes!("../../../tests/fixtures/interlaced.h264"));
        assert!(info.interlaced);
        assert_eq!((info.width, info.height), (64, 64));
    }

    #[test]
    fn truncated_and_random_sps_never_panic() {
        let nal = [0x67u8, 100, 0, 30, 0xFF, 0xFF, 0xFF, 0xFF];
        for n in 0..=nal.len() {
            let _ = parse_sps(&nal[..n]);
        }
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let bytes: Vec<u8> = std::iter::once(0x67)
                .chain((0..24).map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                }))
                .collect();
            let _ = parse_sps(&bytes);
        }
    }
}
