//! Deserializing a parsed tree into a Rust type, type-directed (like
//! `serde_json`): the type says whether an element is a string, a number,
//! a sequence or a map.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, IntoDeserializer, Visitor};

use super::parse::{trim_xml, Node};
use super::render::singular;
use super::{XmlError, XmlErrorKind};

/// Deserializes the root element into T, naming the path of a misfit.
pub(super) fn deserialize<T: de::DeserializeOwned>(root: &Node) -> Result<T, XmlError> {
    serde_path_to_error::deserialize(NodeDe { node: root }).map_err(|err| {
        let path = err.path().to_string();
        XmlError {
            kind: XmlErrorKind::Data,
            message: err.into_inner().0,
            path: (!path.is_empty() && path != ".").then_some(path),
        }
    })
}

/// The serde error of the tree deserializer.
#[derive(Debug)]
struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}
#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
}

impl<'a> NodeDe<'a> {
    /// What the element holds, for error messages.
    fn found(self) -> String {
        if self.node.nil {
            "nil".to_owned()
        } else if self.node.has_children() {
            format!("element `{}` with child elements", self.node.name)
        } else {
            format!("text {:?}", self.node.text)
        }
    }

    fn invalid(self, expected: &str) -> DeError {
        DeError(format!(
            "invalid type: expected {expected}, found {}",
            self.found()
        ))
    }

    /// The text of a leaf element, or an error naming `expected`.
    fn text(self, expected: &str) -> Result<&'a str, DeError> {
        if self.node.nil || self.node.has_children() {
            Err(self.invalid(expected))
        } else {
            Ok(&self.node.text)
        }
    }

    /// Parses the trimmed text of a leaf element.
    fn parse<T: std::str::FromStr>(self, expected: &str) -> Result<T, DeError> {
        trim_xml(self.text(expected)?)
            .parse()
            .map_err(|_| self.invalid(expected))
    }

    fn float(self, expected: &str) -> Result<f64, DeError> {
        let value: f64 = self.parse(expected)?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(self.invalid(expected))
        }
    }

    /// The child elements of an element read as a sequence or map. A blank
    /// element is an empty collection.
    fn children(self, expected: &str) -> Result<&'a [Node], DeError> {
        if self.node.nil || !(self.node.has_children() || self.node.is_blank()) {
            Err(self.invalid(expected))
        } else {
            Ok(&self.node.children)
        }
    }

    fn map_access(self, expected: &str) -> Result<ChildMap<'a>, DeError> {
        let children = self.children(expected)?;
        let mut seen = HashSet::with_capacity(children.len());
        for child in children {
            if !seen.insert(child.name.as_str()) {
                return Err(DeError(format!("repeated element `{}`", child.name)));
            }
        }
        Ok(ChildMap {
            iter: children.iter(),
            pending: None,
        })
    }

    /// Whether `deserialize_any` should read this element as a sequence.
    fn looks_like_seq(self) -> bool {
        match self.node.children.as_slice() {
            [only] => only.name == singular(&self.node.name),
            [first, rest @ ..] => rest.iter().all(|child| child.name == first.name),
            [] => false,
        }
    }
}

/// The number methods of a deserializer whose `parse` reads its text
/// (an element's, or a map key's).
macro_rules! deserialize_number {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.nil {
            visitor.visit_unit()
        } else if !self.node.has_children() {
            visitor.visit_str(&self.node.text)
        } else if self.looks_like_seq() {
            self.deserialize_seq(visitor)
        } else {
            self.deserialize_map(visitor)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match trim_xml(self.text("bool")?) {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(self.invalid("bool")),
        }
    }

    deserialize_number! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = self.float("f32")?;
        if value.abs() > f64::from(f32::MAX) {
            return Err(self.invalid("f32"));
        }
        #[allow(clippy::cast_possible_truncation)]
        visitor.visit_f32(value as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_f64(self.float("f64")?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.text("a character")?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(self.invalid("a character")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_str(self.text("string")?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_bytes(self.text("bytes")?.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.nil {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.nil || self.node.is_blank() {
            visitor.visit_unit()
        } else {
            Err(self.invalid("an empty element"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let children = self.children("a sequence")?;
        visitor.visit_seq(ChildSeq {
            iter: children.iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(self.map_access("a map")?)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(self.map_access(&format!("struct {name}"))?)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if self.node.nil {
            return Err(self.invalid(&format!("enum {name}")));
        }
        match self.node.children.as_slice() {
            [] => visitor.visit_enum(trim_xml(&self.node.text).into_deserializer()),
            [variant] => visitor.visit_enum(VariantDe { node: variant }),
            _ => Err(DeError(format!(
                "invalid type: expected enum {name} (a variant name, or one element named \
                 after the variant), found {} child elements",
                self.node.children.len()
            ))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// The child elements of an element as a sequence.
struct ChildSeq<'a> {
    iter: std::slice::Iter<'a, Node>,
}

impl<'de> de::SeqAccess<'de> for ChildSeq<'_> {
    type Error = DeError;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        match self.iter.next() {
            Some(node) => seed.deserialize(NodeDe { node }).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The child elements of an element as a map from element name to element.
struct ChildMap<'a> {
    iter: std::slice::Iter<'a, Node>,
    pending: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for ChildMap<'_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some(node) => {
                self.pending = Some(node);
                seed.deserialize(KeyDe { key: &node.name }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, DeError> {
        match self.pending.take() {
            Some(node) => seed.deserialize(NodeDe { node }),
            None => Err(DeError(
                "a map value was requested before its key".to_owned(),
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An element name used as a map key or struct field name.
struct KeyDe<'a> {
    key: &'a str,
}

impl KeyDe<'_> {
    fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, DeError> {
        self.key.parse().map_err(|_| {
            DeError(format!(
                "invalid type: expected {expected} as key, found {:?}",
                self.key
            ))
        })
    }
}

impl<'de> de::Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_str(self.key)
    }

    deserialize_number! {
        deserialize_bool => bool, visit_bool;
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
        deserialize_f32 => f32, visit_f32;
        deserialize_f64 => f64, visit_f64;
        deserialize_char => char, visit_char;
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(self.key.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// An enum written as an element with one child named after the variant.
struct VariantDe<'a> {
    node: &'a Node,
}

impl<'de, 'a> de::EnumAccess<'de> for VariantDe<'a> {
    type Error = DeError;
    type Variant = NodeDe<'a>;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, NodeDe<'a>), DeError> {
        let variant = seed.deserialize(KeyDe {
            key: &self.node.name,
        })?;
        Ok((variant, NodeDe { node: self.node }))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserializer::deserialize_unit(self, de::IgnoredAny).map(|_| ())
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(self.map_access("a struct variant")?)
    }
}
