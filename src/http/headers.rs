//! Ordered, repeatable HTTP header fields (Tornado's `HTTPHeaders`): names
//! keep the case they were given or received in; lookups ignore case.

/// Header fields in order; a name may repeat (e.g. `Set-Cookie`). All
/// names and values live in one string (two allocations for a whole
/// response head, not two per field).
#[derive(Clone, Default)]
pub struct Headers {
    text: String,
    fields: Vec<Field>,
}

/// Where one field's name and value are in `Headers::text`.
#[derive(Clone, Copy)]
struct Field {
    name: (u32, u32),
    value: (u32, u32),
    /// The value arrived as bytes that are not UTF-8 and is kept decoded
    /// as Latin-1 (each byte one char), so its bytes can be given back.
    latin1: bool,
}

impl Headers {
    /// No fields.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Room for `fields` fields holding `bytes` bytes of names and values.
    pub fn with_capacity(fields: usize, bytes: usize) -> Headers {
        Headers {
            text: String::with_capacity(bytes),
            fields: Vec::with_capacity(fields),
        }
    }

    fn push_text(&mut self, part: &str) -> (u32, u32) {
        let start = self.text.len() as u32;
        self.text.push_str(part);
        (start, self.text.len() as u32)
    }

    fn slice(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// Appends a field (keeps any earlier ones of the same name).
    pub fn add(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        let name = self.push_text(name.as_ref());
        let value = self.push_text(value.as_ref());
        self.fields.push(Field {
            name,
            value,
            latin1: false,
        });
    }

    /// Appends a field whose value arrived as `raw` bytes that are not
    /// UTF-8: kept as Latin-1 text, and as those bytes by
    /// [`value_bytes_at`](Self::value_bytes_at).
    pub fn add_latin1(&mut self, name: &str, raw: &[u8]) {
        let name = self.push_text(name);
        let start = self.text.len() as u32;
        self.text.extend(raw.iter().map(|&b| char::from(b)));
        let value = (start, self.text.len() as u32);
        self.fields.push(Field {
            name,
            value,
            latin1: true,
        });
    }

    /// The `i`-th value's bytes as they were received: the UTF-8 text, or
    /// for a value that was not UTF-8, its original (Latin-1) bytes.
    pub fn value_bytes_at(&self, i: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
        let field = self.fields.get(i)?;
        let text = self.slice(field.value);
        Some(if field.latin1 {
            std::borrow::Cow::Owned(text.chars().map(|c| c as u8).collect())
        } else {
            std::borrow::Cow::Borrowed(text.as_bytes())
        })
    }

    /// Replaces every field of this name with one.
    pub fn set(&mut self, name: &str, value: impl AsRef<str>) {
        self.remove(name);
        self.add(name, value);
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| self.name_is(f, name))
            .map(|f| self.slice(f.value))
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |f| self.name_is(f, name))
            .map(|f| self.slice(f.value))
    }

    /// Compares bytes, lengths first: a lookup over a head touches only
    /// the names it could match.
    #[inline]
    fn name_is(&self, field: &Field, name: &str) -> bool {
        let (start, end) = field.name;
        (end - start) as usize == name.len()
            && self.text.as_bytes()[start as usize..end as usize]
                .eq_ignore_ascii_case(name.as_bytes())
    }

    /// Removes every field of this name (their text stays until the
    /// headers are dropped: removal is rare and heads are small).
    pub fn remove(&mut self, name: &str) {
        let text = self.text.as_bytes();
        self.fields.retain(|f| {
            !text[f.name.0 as usize..f.name.1 as usize].eq_ignore_ascii_case(name.as_bytes())
        });
    }

    /// Bytes of all names and values together (what a serialized head
    /// needs, less the separators).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Whether a field named `name` (in any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|f| (self.slice(f.name), self.slice(f.value)))
    }

    /// (name, value bytes) pairs in order, each value as
    /// [`value_bytes_at`](Self::value_bytes_at) gives it: what goes on the
    /// wire (a Latin-1 value as its original bytes).
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, [u8]>)> {
        (0..self.fields.len())
            .filter_map(|i| Some((self.slice(self.fields[i].name), self.value_bytes_at(i)?)))
    }

    /// The `i`-th field.
    pub fn get_index(&self, i: usize) -> Option<(&str, &str)> {
        self.fields
            .get(i)
            .map(|f| (self.slice(f.name), self.slice(f.value)))
    }

    /// The number of fields (a repeated name counts each time).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Headers;

    #[test]
    fn order_case_and_repeats() {
        let mut h = Headers::new();
        h.add("Set-Cookie", "a=1");
        h.add("Content-Type", "text/plain");
        h.add("set-cookie", "b=2");
        assert_eq!(h.get("SET-COOKIE"), Some("a=1"));
        assert_eq!(h.get_all("Set-Cookie").collect::<Vec<_>>(), ["a=1", "b=2"]);
        let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Set-Cookie", "Content-Type", "set-cookie"]);
        h.set("Set-Cookie", "c=3");
        assert_eq!(h.get_all("set-cookie").collect::<Vec<_>>(), ["c=3"]);
        h.remove("content-type");
        assert!(!h.contains("Content-Type"));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn latin1_values_give_their_bytes_back() {
        let mut h = Headers::new();
        h.add("A", "caf\u{e9}");
        h.add_latin1("B", b"caf\xe9");
        assert_eq!(h.get("B"), Some("caf\u{e9}"));
        assert_eq!(
            h.value_bytes_at(0).unwrap().as_ref(),
            "caf\u{e9}".as_bytes()
        );
        assert_eq!(h.value_bytes_at(1).unwrap().as_ref(), b"caf\xe9");
        assert!(h.value_bytes_at(2).is_none());
    }
}
