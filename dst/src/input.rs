//! Reading the files a user hands us (scenarios, failure artifacts): one
//! size cap and one helper, so that no input can make us read without end
//! (`replay /dev/zero`), and every problem names the file, the cap or the
//! first byte that is not UTF-8. Also the words of a parse error: serde
//! names Rust types (`expected struct RateSpec`), which a user never wrote,
//! so they are put as the key at fault and what it allows.

use std::io::Read;
use std::path::Path;

/// The largest input file read: 16 MiB. The largest scenario is a few KiB
/// and the largest artifact a sweep writes is well under 1 MiB (a few
/// thousand recorded faults), so this leaves room for any real file while
/// bounding the memory one bad path can take.
pub const INPUT_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Why an input file could not be read as text. Its `Display` is the
/// message after the file name.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Opening or reading failed (missing, a directory, no permission).
    Io(std::io::Error),
    /// More than [`INPUT_BYTES_MAX`] bytes.
    TooLarge,
    /// Not UTF-8: where the first invalid byte is.
    NotUtf8 {
        /// Its byte offset from the start, from 0.
        byte: usize,
        /// Its value.
        value: u8,
        /// Its line, from 1.
        line: usize,
        /// Its column on that line in bytes, from 1.
        column: usize,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(error) => write!(f, "cannot read it ({error})"),
            ReadError::TooLarge => write!(
                f,
                "is larger than the {} MiB cap on input files ({INPUT_BYTES_MAX} bytes): \
                 allowed is a scenario or failure artifact of at most that size",
                INPUT_BYTES_MAX / (1024 * 1024)
            ),
            ReadError::NotUtf8 {
                byte,
                value,
                line,
                column,
            } => write!(
                f,
                "is not UTF-8 text: invalid byte 0x{value:02x} at byte {byte} (line {line}, \
                 column {column}); allowed is UTF-8 TOML or JSON"
            ),
        }
    }
}

/// Reads `path` as UTF-8 text of at most [`INPUT_BYTES_MAX`] bytes. Reads
/// one byte past the cap and no further, so an endless file (`/dev/zero`,
/// a pipe) stops promptly.
pub(crate) fn read_text(path: &Path) -> Result<String, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(INPUT_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > INPUT_BYTES_MAX {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|error| {
        let byte = error.utf8_error().valid_up_to();
        let bytes = error.as_bytes();
        let before = &bytes[..byte];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        ReadError::NotUtf8 {
            byte,
            value: bytes[byte],
            line,
            column: byte - line_start + 1,
        }
    })
}

/// The shape serde expects of a type: a struct's fields or an enum's
/// variants, as its derive declares them (so it cannot go stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `struct NAME` with these fields.
    Struct(&'static str, &'static [&'static str]),
    /// `enum NAME` with these variants.
    Enum(&'static str, &'static [&'static str]),
}

/// A deserializer that answers nothing, only records what a type's
/// `Deserialize` asks for first.
struct Probe;

#[derive(Debug)]
struct Probed(Option<Shape>);

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Probed {}

impl serde::de::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed(None)
    }
}

impl<'de> serde::Deserializer<'de> for Probe {
    type Error = Probed;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(None))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Some(Shape::Struct(name, fields))))
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Some(Shape::Enum(name, variants))))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

/// The shape of `T`, if its `Deserialize` asks for a struct or an enum.
pub(crate) fn shape<T: serde::de::DeserializeOwned>() -> Option<Shape> {
    match T::deserialize(Probe) {
        Err(Probed(shape)) => shape,
        Ok(_) => None,
    }
}

/// What a TOML or JSON document calls a key-value container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// TOML: a table.
    Toml,
    /// JSON: an object.
    Json,
}

impl Format {
    fn container(self) -> &'static str {
        match self {
            Format::Toml => "a table",
            Format::Json => "an object",
        }
    }
}

/// Rewrites serde's words for Rust types in `message` into what the file
/// allows: `struct RateSpec` becomes "a table with count_min, ...",
/// `enum FaultKind` "one of `partition`, ...", `u64` "a non-negative
/// integer". `shapes` are the types the input may contain; `named` adds
/// types whose shape cannot be probed (flattened or internally tagged),
/// with their description.
pub(crate) fn plain_words(
    message: &str,
    format: Format,
    shapes: &[Shape],
    named: &[(&str, &str)],
) -> String {
    let mut text = message.to_string();
    for &(rust, words) in named {
        text = replace_word(&text, rust, words);
    }
    for shape in shapes {
        let (rust, words) = match *shape {
            Shape::Struct(name, fields) => (
                format!("struct {name}"),
                format!("{} with {}", format.container(), fields.join(", ")),
            ),
            Shape::Enum(name, variants) => {
                let quoted: Vec<String> = variants.iter().map(|v| format!("`{v}`")).collect();
                (
                    format!("enum {name}"),
                    format!("one of {}", quoted.join(", ")),
                )
            }
        };
        text = replace_word(&text, &rust, &words);
    }
    for (rust, words) in [
        ("a sequence", "an array"),
        ("a map", format.container()),
        ("u8", "a non-negative integer up to 255"),
        ("u16", "a non-negative integer up to 65535"),
        ("u32", "a non-negative integer up to 4294967295"),
        ("u64", "a non-negative integer up to 18446744073709551615"),
        ("usize", "a non-negative integer"),
        ("i32", "an integer from -2147483648 to 2147483647"),
        (
            "i64",
            "an integer from -9223372036854775808 to 9223372036854775807",
        ),
    ] {
        text = replace_word(
            &text,
            &format!("expected {rust}"),
            &format!("expected {words}"),
        );
    }
    text
}

/// [`tables_not_arrays`] for a JSON file: `text` as the user wrote it,
/// against `parsed`, the value it was read into, written back out.
pub(crate) fn json_tables_not_arrays<T: serde::Serialize>(
    text: &str,
    parsed: &T,
) -> Result<(), String> {
    match (
        serde_json::from_str::<serde_json::Value>(text),
        serde_json::to_value(parsed),
    ) {
        (Ok(raw), Ok(parsed)) => tables_not_arrays(&raw, &parsed, Format::Json),
        _ => Ok(()),
    }
}

/// Refuses a table (an object, in JSON) written as an array. Serde fills a
/// struct from a sequence by position, so `run = [5000, 5000]` would set
/// the first two fields of `[run]`, silently. `parsed`, the value read
/// from `raw` written back out, has a table wherever the input must: an
/// array of `raw` found there is refused, naming the key and the fields.
pub(crate) fn tables_not_arrays(
    raw: &serde_json::Value,
    parsed: &serde_json::Value,
    format: Format,
) -> Result<(), String> {
    use serde_json::Value;
    fn walk(path: &str, raw: &Value, parsed: &Value, format: Format) -> Result<(), String> {
        match (raw, parsed) {
            (Value::Array(_), Value::Object(fields)) => {
                let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                Err(format!(
                    "{path}: expected {} with {}, found an array",
                    format.container(),
                    names.join(", ")
                ))
            }
            (Value::Object(raw), Value::Object(parsed)) => {
                for (key, value) in raw {
                    if let Some(field) = parsed.get(key) {
                        let path = match path {
                            "" => key.clone(),
                            _ => format!("{path}.{key}"),
                        };
                        walk(&path, value, field, format)?;
                    }
                }
                Ok(())
            }
            (Value::Array(raw), Value::Array(parsed)) => {
                for (index, (value, item)) in raw.iter().zip(parsed).enumerate() {
                    walk(&format!("{path}[{index}]"), value, item, format)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk("", raw, parsed, format)
}

/// Replaces whole-word occurrences of `from` (not followed by a letter,
/// digit or `_`) with `to`.
fn replace_word(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(index) = rest.find(from) {
        let after = &rest[index + from.len()..];
        let whole = !after
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..index]);
        out.push_str(if whole { to } else { from });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Line and column (from 1, the column in characters) of byte `offset`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    // Bounded: a char is at most 4 bytes.
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = 1 + before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key (`faults.crash`, `schedule[1].node`) at `span` of a
/// TOML document: the innermost key or value whose span holds all of it.
/// `None` when the text does not parse or no key holds the span (an error
/// about the whole document).
pub(crate) fn toml_key_at(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    // An empty span at the start is how toml points at the whole document
    // (a missing top-level key): no key holds that.
    if span.is_empty() {
        return None;
    }
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut best = None;
    toml_walk(document.get_ref(), "", &span, &mut best);
    best.map(|(_, path)| path)
}

type Best = Option<(usize, String)>;

fn toml_consider(
    span: std::ops::Range<usize>,
    path: &str,
    error: &std::ops::Range<usize>,
    best: &mut Best,
) {
    if span.start <= error.start && error.end <= span.end {
        let length = span.end - span.start;
        if best
            .as_ref()
            .is_none_or(|(shortest, _)| length <= *shortest)
        {
            *best = Some((length, path.to_string()));
        }
    }
}

fn toml_walk(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    error: &std::ops::Range<usize>,
    best: &mut Best,
) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        toml_consider(key.span(), &path, error, best);
        toml_value(value, &path, error, best);
    }
}

fn toml_value(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    path: &str,
    error: &std::ops::Range<usize>,
    best: &mut Best,
) {
    toml_consider(value.span(), path, error, best);
    match value.get_ref() {
        toml::de::DeValue::Table(table) => toml_walk(table, path, error, best),
        toml::de::DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                toml_value(item, &format!("{path}[{index}]"), error, best);
            }
        }
        _ => {}
    }
}

/// The key path (`faults[3].duration_ns`, `scenario.run`) open at byte
/// `offset` of a JSON document that is well formed up to there, as
/// serde_json reports a type error: the objects and arrays entered and not
/// yet left, with the last key or index of each.
pub(crate) fn json_key_at(text: &str, offset: usize) -> String {
    enum Open {
        Object(Option<String>),
        Array(usize),
    }
    let mut stack: Vec<Open> = Vec::new();
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let mut index = 0;
    // Bounded: every round moves `index` forward.
    while index < end {
        match bytes[index] {
            b'{' => stack.push(Open::Object(None)),
            b'[' => stack.push(Open::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Open::Array(count)) => *count += 1,
                Some(Open::Object(key)) => *key = None,
                None => {}
            },
            b'"' => {
                let start = index + 1;
                index = start;
                while index < bytes.len() && bytes[index] != b'"' {
                    index += if bytes[index] == b'\\' { 2 } else { 1 };
                }
                let string = text.get(start..index.min(bytes.len())).unwrap_or_default();
                if let Some(Open::Object(key @ None)) = stack.last_mut() {
                    *key = Some(string.to_string());
                }
            }
            _ => {}
        }
        index += 1;
    }
    let mut path = String::new();
    for open in &stack {
        match open {
            Open::Object(Some(key)) if path.is_empty() => path.push_str(key),
            Open::Object(Some(key)) => {
                path.push('.');
                path.push_str(key);
            }
            Open::Object(None) => {}
            Open::Array(count) => path.push_str(&format!("[{count}]")),
        }
    }
    path
}

/// The byte offset of (line, column), both from 1 (serde_json's column
/// counts bytes).
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    /// A directory of its own holding `name` with `content`, and the
    /// file's path.
    fn scratch(name: &str, content: &[u8]) -> (Scratch, std::path::PathBuf) {
        let dir = Scratch::new("dst-input", name);
        std::fs::create_dir_all(&dir).expect("creates");
        let path = dir.join(name);
        std::fs::write(&path, content).expect("writes");
        (dir, path)
    }

    #[test]
    fn text_under_the_cap_is_read_whole() {
        let (_dir, path) = scratch("ok.toml", b"name = \"t\"\n");
        assert_eq!(read_text(&path).expect("reads"), "name = \"t\"\n");
    }

    #[test]
    fn the_first_invalid_byte_is_named_with_its_line_and_column() {
        let (_dir, path) = scratch("bad.toml", b"name = \"t\"\nab\xffc\n");
        let error = read_text(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            "is not UTF-8 text: invalid byte 0xff at byte 13 (line 2, column 3); allowed is \
             UTF-8 TOML or JSON"
        );
    }

    #[test]
    fn an_endless_file_stops_at_the_cap() {
        let zero = Path::new("/dev/zero");
        if !zero.exists() {
            return;
        }
        let error = read_text(zero).unwrap_err();
        assert!(matches!(error, ReadError::TooLarge), "{error}");
        assert!(error.to_string().contains("16 MiB"), "{error}");
    }

    #[test]
    fn a_file_of_exactly_the_cap_is_read_and_one_byte_more_is_not() {
        let (_dir, path) = scratch("cap.json", &vec![b' '; INPUT_BYTES_MAX as usize]);
        assert_eq!(
            read_text(&path).expect("reads").len() as u64,
            INPUT_BYTES_MAX
        );
        let (_dir, path) = scratch("over.json", &vec![b' '; INPUT_BYTES_MAX as usize + 1]);
        assert!(matches!(read_text(&path), Err(ReadError::TooLarge)));
    }
}
