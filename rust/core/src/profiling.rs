//! Per-node hardware information: the payloads of `NodeGatheredInfo` and the State maps they fill.
//!
//! Mirrors `python/clusterstate/models/profiling.py`, field for field and in the same order.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// An amount of memory or storage, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    #[serde(alias = "inBytes")]
    pub in_bytes: i64,
}

/// RAM and swap of a node. Untagged when used as gathered info (as in exo).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryUsage {
    #[serde(alias = "ramTotal")]
    pub ram_total: Memory,
    #[serde(alias = "ramAvailable")]
    pub ram_available: Memory,
    #[serde(alias = "swapTotal")]
    pub swap_total: Memory,
    #[serde(alias = "swapAvailable")]
    pub swap_available: Memory,
}

/// Disk size and free space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskUsage {
    pub total: Memory,
    pub available: Memory,
}

/// GPU, CPU, power and temperature readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemPerformanceProfile {
    #[serde(default, alias = "gpuUsage")]
    pub gpu_usage: f64,
    #[serde(default)]
    pub temp: f64,
    #[serde(default, alias = "sysPower")]
    pub sys_power: f64,
    #[serde(default, alias = "pcpuUsage")]
    pub pcpu_usage: f64,
    #[serde(default, alias = "ecpuUsage")]
    pub ecpu_usage: f64,
}

macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vattr:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`\"", $text, "\"`")] $(#[$vattr])* $variant,)*
        }

        impl $name {
            /// The JSON string of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl ::serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("one of" $(, " ", $text)*))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        match value {
                            $($text => Ok($name::$variant),)*
                            _ => Err(E::invalid_value(::serde::de::Unexpected::Str(value), &self)),
                        }
                    }
                }
                // A string only: serde's enum form would also take `{"Pending": null}`, which pydantic refuses.
                deserializer.deserialize_str(V)
            }
        }
    };
}
pub(crate) use str_enum;

str_enum! {
    /// The kind of a network interface.
    InterfaceType {
        Wifi = "wifi",
        Ethernet = "ethernet",
        MaybeEthernet = "maybe_ethernet",
        Thunderbolt = "thunderbolt",
        #[default]
        Unknown = "unknown",
    }
}

/// One network interface of a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInterfaceInfo {
    pub name: String,
    #[serde(alias = "ipAddress")]
    pub ip_address: String,
    #[serde(default, alias = "interfaceType")]
    pub interface_type: InterfaceType,
}

fn unknown() -> String {
    "Unknown".to_owned()
}

/// A node's names and versions; every field defaults to `"Unknown"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeIdentity {
    #[serde(default = "unknown", alias = "modelId")]
    pub model_id: String,
    #[serde(default = "unknown", alias = "chipId")]
    pub chip_id: String,
    #[serde(default = "unknown", alias = "friendlyName")]
    pub friendly_name: String,
    #[serde(default = "unknown", alias = "osVersion")]
    pub os_version: String,
    #[serde(default = "unknown", alias = "osBuildVersion")]
    pub os_build_version: String,
}

impl Default for NodeIdentity {
    fn default() -> Self {
        Self {
            model_id: unknown(),
            chip_id: unknown(),
            friendly_name: unknown(),
            os_version: unknown(),
            os_build_version: unknown(),
        }
    }
}

/// A node's network interfaces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeNetworkInfo {
    #[serde(default)]
    pub interfaces: Vec<NetworkInterfaceInfo>,
}

/// One Thunderbolt controller of a node: its RDMA interface and domain UUID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThunderboltIdentifier {
    #[serde(alias = "rdmaInterface")]
    pub rdma_interface: String,
    #[serde(alias = "domainUuid")]
    pub domain_uuid: String,
    #[serde(default, alias = "linkSpeed")]
    pub link_speed: String,
}

/// A cable: the local controller's domain UUID and the one seen at the far end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThunderboltConnection {
    #[serde(alias = "sourceUuid")]
    pub source_uuid: String,
    #[serde(alias = "sinkUuid")]
    pub sink_uuid: String,
}

/// A node's Thunderbolt controllers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeThunderboltInfo {
    #[serde(default)]
    pub interfaces: Vec<ThunderboltIdentifier>,
}

/// Whether RDMA is enabled on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRdmaCtlStatus {
    pub enabled: bool,
}

/// The Thunderbolt Bridge network service of a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThunderboltBridgeStatus {
    pub enabled: bool,
    pub exists: bool,
    #[serde(default, alias = "serviceName")]
    pub service_name: Option<String>,
}

// --- the GatheredInfo union: one sample of one monitor ---

/// `MacmonMetrics`: performance counters and memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacmonMetrics {
    #[serde(alias = "systemProfile")]
    pub system_profile: SystemPerformanceProfile,
    pub memory: MemoryUsage,
}

/// `NodeNetworkInterfaces`: the node's interfaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeNetworkInterfaces {
    pub ifaces: Vec<NetworkInterfaceInfo>,
}

/// `MacThunderboltIdentifiers`: the node's Thunderbolt controllers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacThunderboltIdentifiers {
    pub idents: Vec<ThunderboltIdentifier>,
}

/// `MacThunderboltConnections`: the node's Thunderbolt cables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacThunderboltConnections {
    pub conns: Vec<ThunderboltConnection>,
}

/// `RdmaCtlStatus`: whether RDMA is enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdmaCtlStatus {
    pub enabled: bool,
}

/// `ThunderboltBridgeInfo`: the Thunderbolt Bridge service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThunderboltBridgeInfo {
    pub status: ThunderboltBridgeStatus,
}

/// `NodeConfig`: the node's config was read; carries nothing but still shows the node is alive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {}

/// `MiscData`: the node's friendly name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiscData {
    #[serde(alias = "friendlyName")]
    pub friendly_name: String,
}

/// `StaticNodeInformation`: model, chip and OS versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticNodeInformation {
    pub model: String,
    pub chip: String,
    #[serde(alias = "osVersion")]
    pub os_version: String,
    #[serde(alias = "osBuildVersion")]
    pub os_build_version: String,
}

/// `NodeDiskUsage`: disk size and free space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDiskUsage {
    #[serde(alias = "diskUsage")]
    pub disk_usage: DiskUsage,
}

/// One monitor sample. Externally tagged (`{"MiscData": {...}}`), except `MemoryUsage`, which exo sends bare.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum GatheredInfo {
    MacmonMetrics(MacmonMetrics),
    NodeNetworkInterfaces(NodeNetworkInterfaces),
    MacThunderboltIdentifiers(MacThunderboltIdentifiers),
    MacThunderboltConnections(MacThunderboltConnections),
    RdmaCtlStatus(RdmaCtlStatus),
    ThunderboltBridgeInfo(ThunderboltBridgeInfo),
    NodeConfig(NodeConfig),
    MiscData(MiscData),
    StaticNodeInformation(StaticNodeInformation),
    NodeDiskUsage(NodeDiskUsage),
    /// Bare (untagged) on the wire.
    #[serde(untagged)]
    MemoryUsage(MemoryUsage),
}

const GATHERED_INFO_TAGS: &[&str] = &[
    "MacmonMetrics",
    "NodeNetworkInterfaces",
    "MacThunderboltIdentifiers",
    "MacThunderboltConnections",
    "RdmaCtlStatus",
    "ThunderboltBridgeInfo",
    "NodeConfig",
    "MiscData",
    "StaticNodeInformation",
    "NodeDiskUsage",
];

impl<'de> Deserialize<'de> for GatheredInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(GatheredInfoVisitor)
    }
}

struct GatheredInfoVisitor;

impl<'de> Visitor<'de> for GatheredInfoVisitor {
    type Value = GatheredInfo;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tagged GatheredInfo object or a bare MemoryUsage object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GatheredInfo, A::Error> {
        // pydantic: a dict whose only key is capitalised is a tag; anything else is a bare MemoryUsage. Keys of
        // MemoryUsage are lower case, so a capitalised first key that is not alone is an error either way.
        let key = match map.next_key::<String>()? {
            Some(key) if key.chars().next().is_some_and(char::is_uppercase) => key,
            first => {
                let prefixed = Prefixed { key: first, map };
                return MemoryUsage::deserialize(MapAccessDeserializer::new(prefixed)).map(GatheredInfo::MemoryUsage);
            }
        };
        let info = match key.as_str() {
            "MacmonMetrics" => GatheredInfo::MacmonMetrics(map.next_value()?),
            "NodeNetworkInterfaces" => GatheredInfo::NodeNetworkInterfaces(map.next_value()?),
            "MacThunderboltIdentifiers" => GatheredInfo::MacThunderboltIdentifiers(map.next_value()?),
            "MacThunderboltConnections" => GatheredInfo::MacThunderboltConnections(map.next_value()?),
            "RdmaCtlStatus" => GatheredInfo::RdmaCtlStatus(map.next_value()?),
            "ThunderboltBridgeInfo" => GatheredInfo::ThunderboltBridgeInfo(map.next_value()?),
            "NodeConfig" => GatheredInfo::NodeConfig(map.next_value()?),
            "MiscData" => GatheredInfo::MiscData(map.next_value()?),
            "StaticNodeInformation" => GatheredInfo::StaticNodeInformation(map.next_value()?),
            "NodeDiskUsage" => GatheredInfo::NodeDiskUsage(map.next_value()?),
            _ => return Err(de::Error::unknown_variant(&key, GATHERED_INFO_TAGS)),
        };
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format_args!(
                "a tagged GatheredInfo has one key, {key:?} has company"
            )));
        }
        Ok(info)
    }
}

/// A map whose first key was already read (to choose a type); it hands that key out again first.
pub(crate) struct Prefixed<A> {
    pub(crate) key: Option<String>,
    pub(crate) map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Prefixed<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        match self.key.take() {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMORY: &str = r#"{"ram_total":{"in_bytes":1},"ram_available":{"inBytes":2},"swapTotal":{"in_bytes":3},"swap_available":{"in_bytes":4}}"#;

    #[test]
    fn memory_usage_is_untagged() {
        let info: GatheredInfo = serde_json::from_str(MEMORY).unwrap();
        assert!(matches!(info, GatheredInfo::MemoryUsage(m) if m.swap_total.in_bytes == 3));
        let text = serde_json::to_string(&info).unwrap();
        assert_eq!(
            text,
            r#"{"ram_total":{"in_bytes":1},"ram_available":{"in_bytes":2},"swap_total":{"in_bytes":3},"swap_available":{"in_bytes":4}}"#
        );
        // Tagged MemoryUsage, empty objects and stray keys are refused, as pydantic does.
        assert!(serde_json::from_str::<GatheredInfo>(&format!(r#"{{"MemoryUsage":{MEMORY}}}"#)).is_err());
        assert!(serde_json::from_str::<GatheredInfo>("{}").is_err());
        assert!(serde_json::from_str::<GatheredInfo>(r#"{"NodeConfig":{},"x":1}"#).is_err());
        assert!(serde_json::from_str::<GatheredInfo>(r#"{"NodeConfig":{"NodeConfig":{}}}"#).is_err());
    }

    #[test]
    fn tagged_infos() {
        let info: GatheredInfo = serde_json::from_str(r#"{"NodeConfig":{}}"#).unwrap();
        assert_eq!(info, GatheredInfo::NodeConfig(NodeConfig {}));
        assert_eq!(serde_json::to_string(&info).unwrap(), r#"{"NodeConfig":{}}"#);
        let info: GatheredInfo = serde_json::from_str(r#"{"MiscData":{"friendlyName":"a"}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"MiscData":{"friendly_name":"a"}}"#
        );
        assert!(serde_json::from_str::<GatheredInfo>(r#"{"Nope":{}}"#).is_err());
    }

    #[test]
    fn strict_values() {
        assert!(
            serde_json::from_str::<NetworkInterfaceInfo>(r#"{"name":"a","ip_address":"b","interface_type":"x"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Memory>(r#"{"in_bytes":1.0}"#).is_err());
        assert!(serde_json::from_str::<NodeRdmaCtlStatus>(r#"{"enabled":1}"#).is_err());
        let profile: SystemPerformanceProfile = serde_json::from_str(r#"{"gpu_usage":1}"#).unwrap();
        assert_eq!(
            crate::json::to_string(&profile, crate::json::Case::Snake).unwrap(),
            r#"{"gpu_usage":1.0,"temp":0.0,"sys_power":0.0,"pcpu_usage":0.0,"ecpu_usage":0.0}"#
        );
    }
}
