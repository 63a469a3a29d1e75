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
    /// A node's identity (in exo: the libp2p `PeerId` in base58).
    NodeId;
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
    fn random_ids_are_uuid4_strings() {
        let id = EventId::new_random();
        assert_eq!(id.as_str().len(), 36);
        assert_ne!(id, EventId::new_random());
    }
}
