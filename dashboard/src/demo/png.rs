//! A minimal PNG encoder (RGB, stored deflate blocks): enough to make screenshots for the demo source.

/// CRC-32 (IEEE), as PNG chunks use.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Adler-32, the zlib checksum.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1_u32, 0_u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// Encodes `width` x `height` RGB pixels (row by row, 3 bytes each) as a PNG.
pub fn encode_rgb(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let row = width as usize * 3;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in pixels.chunks(row).take(height as usize) {
        raw.push(0); // filter: none
        raw.extend_from_slice(line);
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A fake screenshot of a failing page: a header bar, a red error banner and grey text lines; `tint` varies the
/// header colour so that screenshots differ.
pub fn failure_screenshot(tint: u8) -> Vec<u8> {
    let (width, height) = (480_u32, 300_u32);
    let mut pixels = vec![0_u8; (width * height * 3) as usize];
    for y in 0..height {
        for x in 0..width {
            let rgb: [u8; 3] = if y < 40 {
                [30, 60_u8.wrapping_add(tint), 110]
            } else if (70..120).contains(&y) && (30..450).contains(&x) {
                if (80..92).contains(&y) && (50..250).contains(&x) { [255, 255, 255] } else { [200, 40, 50] }
            } else if y >= 150 && (y - 150) % 24 < 10 && (30..(430 - (y % 7) * 20)).contains(&x) {
                [200, 200, 205]
            } else {
                [250, 250, 252]
            };
            let at = ((y * width + x) * 3) as usize;
            pixels[at..at + 3].copy_from_slice(&rgb);
        }
    }
    encode_rgb(width, height, &pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(&[b"IEND"]), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn screenshot_is_a_png() {
        let png = failure_screenshot(0);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }
}
