//! Identifier newtypes. On the wire every id is a plain JSON string.
//!
//! Ids are keys of the persistent State maps, which clone keys when they copy a path, so an id is a shared
//! `Arc<str>`: cloning it is a reference-count increment, never a string copy.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(Arc::from(value))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(Arc::from(value))
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(IdVisitor).map(Self)
            }
        }
    )*};
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string id")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Arc::from(value))
    }
}

id_type! {
    /// The command (user request) a generation task or chunk belongs to.
    CommandId;
    /// A model's id, e.g. a Hugging Face repository name.
    ModelId;
    /// A task's id.
    TaskId;
    /// An instance's id.
    InstanceId;
    /// A runner's id.
    RunnerId;
    /// An event's id (a uuid4 string by default).
    EventId;
}

/// A node's identity (in exo: the libp2p `PeerId` in base58).
///
/// Node ids key every per-node map of the State, so a map lookup compares many of them. Each carries the first 16
/// bytes of its text as a big-endian integer, zero-padded: comparing those integers orders ids exactly as their
/// text (a tie falls back to the full text), so most comparisons never follow the pointer to the string. libp2p ids
/// share their first 8 bytes (`12D3KooW`) and differ in the next 8.
#[derive(Clone)]
pub struct NodeId {
    prefix: u128,
    text: Arc<str>,
}

impl NodeId {
    fn new(text: Arc<str>) -> Self {
        let mut head = [0u8; 16];
        let len = text.len().min(16);
        head[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self {
            prefix: u128::from_be_bytes(head),
            text,
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for NodeId {
    fn eq(&self, other: &Self) -> bool {
        self.prefix == other.prefix && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for NodeId {}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Zero padding keeps this the text's order: where padded prefixes first differ, either both have a byte
        // there, or the shorter text ended and has the smaller (zero) byte; equal prefixes leave it to the text.
        self.prefix.cmp(&other.prefix).then_with(|| self.text.cmp(&other.text))
    }
}

impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that `Borrow<str>` lookups in hashed collections agree.
        self.text.hash(state);
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<&str> for NodeId {
    fn from(value: &str) -> Self {
        Self::new(Arc::from(value))
    }
}

impl From<String> for NodeId {
    fn from(value: String) -> Self {
        Self::new(Arc::from(value))
    }
}

impl std::ops::Deref for NodeId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(IdVisitor).map(Self::new)
    }
}

impl EventId {
    /// A fresh random event id (uuid4), the Python models' default when a producer gives none.
    pub fn new_random() -> Self {
        Self::from(uuid::Uuid::new_v4().to_string())
    }
}

impl TaskId {
    /// A fresh random task id (uuid4), the Python models' default when none is given.
    pub fn new_random() -> Self {
        Self::from(uuid::Uuid::new_v4().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let id: NodeId = serde_json::from_str(r#""n\u00e9""#).unwrap();
        assert_eq!(id.as_str(), "n\u{e9}");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"n\u{e9}\"");
        assert!(serde_json::from_str::<NodeId>("1").is_err());
    }

    #[test]
    fn node_ids_order_as_their_text() {
        let texts = [
            "",
            "\0",
            "a",
            "a\0",
            "a\0\0",
            "ab",
            "12D3KooWAAAAAAAA",
            "12D3KooWAAAAAAAA\0",
            "12D3KooWAAAAAAAAb",
            "12D3KooWAAAAAAAB",
            "12D3KooWAAAAAAA",
            "\u{e9}",
            "z",
            "12D3KooWzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ];
        for a in texts {
            for b in texts {
                let (x, y) = (NodeId::from(a), NodeId::from(b));
                assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(x == y, a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn random_ids_are_uuid4_strings() {
        let id = EventId::new_random();
        assert_eq!(id.as_str().len(), 36);
        assert_ne!(id, EventId::new_random());
    }
}
