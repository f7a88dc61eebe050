//! The plugin protocol's JSON, as sigstore's `cliplugin/common` defines it: `[]byte` fields are
//! standard base64 with padding, `hashFunc` is Go's `crypto.Hash` number (SHA-256 = 5),
//! `digest` may be `null`, and every answer carries the method's object.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// argv[2]: what cosign asks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginArgs {
    pub init_options: InitOptions,
    pub method_name: String,
    #[serde(default)]
    pub sign_message: Option<SignMessageArgs>,
    #[serde(default)]
    pub verify_signature: Option<VerifySignatureArgs>,
    #[serde(default)]
    pub create_key: Option<CreateKeyArgs>,
}

/// Options cosign passes with every call.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitOptions {
    #[serde(default)]
    pub ctx_deadline: Option<String>,
    #[serde(default)]
    pub protocol_version: String,
    #[serde(rename = "keyResourceID", default)]
    pub key_resource_id: String,
    #[serde(default)]
    pub hash_func: u32,
    #[serde(default)]
    pub rpc_options: Option<RpcOptions>,
}

/// Per-call RPC options (only the deadline matters here).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcOptions {
    #[serde(default)]
    pub ctx_deadline: Option<String>,
    #[serde(default)]
    pub key_version: String,
    #[serde(default)]
    pub remote_verification: bool,
}

/// How the message on stdin was hashed, if cosign hashed it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageOptions {
    #[serde(default, deserialize_with = "opt_b64")]
    pub digest: Option<Vec<u8>>,
    #[serde(default)]
    pub hash_func: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOptions {
    #[serde(default)]
    pub rpc_options: Option<RpcOptions>,
    #[serde(default)]
    pub message_options: MessageOptions,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignMessageArgs {
    #[serde(default)]
    pub sign_options: CallOptions,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifySignatureArgs {
    #[serde(deserialize_with = "b64")]
    pub signature: Vec<u8>,
    #[serde(default)]
    pub verify_options: CallOptions,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeyArgs {
    #[serde(default)]
    pub ctx_deadline: Option<String>,
    #[serde(default)]
    pub algorithm: String,
}

/// stdout: the answer. The method's object is always present (cosign dereferences it as soon
/// as `errorMessage` is empty), `errorMessage` only on failure.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PluginResp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_algorithm: Option<DefaultAlgorithmResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_algorithms: Option<SupportedAlgorithmsResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_key: Option<PublicKeyResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_message: Option<SignMessageResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_signature: Option<VerifySignatureResp>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DefaultAlgorithmResp {
    pub default_algorithm: String,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SupportedAlgorithmsResp {
    pub supported_algorithms: Vec<String>,
}

/// `publicKey` and `createKey`: base64 of the PEM text.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct PublicKeyResp {
    #[serde(rename = "publicKeyPEM", serialize_with = "to_b64")]
    pub public_key_pem: Vec<u8>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SignMessageResp {
    #[serde(serialize_with = "to_b64")]
    pub signature: Vec<u8>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct VerifySignatureResp {}

/// The methods of protocol v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    DefaultAlgorithm,
    SupportedAlgorithms,
    CreateKey,
    PublicKey,
    SignMessage,
    VerifySignature,
}

impl Method {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "defaultAlgorithm" => Self::DefaultAlgorithm,
            "supportedAlgorithms" => Self::SupportedAlgorithms,
            "createKey" => Self::CreateKey,
            "publicKey" => Self::PublicKey,
            "signMessage" => Self::SignMessage,
            "verifySignature" => Self::VerifySignature,
            _ => return None,
        })
    }
}

impl PluginResp {
    /// A failure of `method`, with the method's (empty) object so cosign never sees it missing.
    pub fn error(method: Option<Method>, message: impl Into<String>) -> Self {
        let mut resp = match method {
            Some(m) => Self::empty(m),
            None => Self::default(),
        };
        resp.error_message = Some(message.into());
        resp
    }

    /// The method's object with default contents.
    pub fn empty(method: Method) -> Self {
        let mut resp = Self::default();
        match method {
            Method::DefaultAlgorithm => resp.default_algorithm = Some(Default::default()),
            Method::SupportedAlgorithms => resp.supported_algorithms = Some(Default::default()),
            Method::CreateKey => resp.create_key = Some(Default::default()),
            Method::PublicKey => resp.public_key = Some(Default::default()),
            Method::SignMessage => resp.sign_message = Some(Default::default()),
            Method::VerifySignature => resp.verify_signature = Some(Default::default()),
        }
        resp
    }

    /// The JSON line for stdout.
    pub fn to_json(&self) -> String {
        // Invariant: every field is a string, a list of strings or bytes; serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"errorMessage":"sigstore-kms-sigbridge could not encode its answer"}"#.to_string()
        })
    }
}

fn to_b64<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(serde::de::Error::custom)
}

fn opt_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden shapes from the reference (sigstore cliplugin interface_test.go and what cosign
    // 2.5 / 3.x send).
    const PUBLIC_KEY: &str = r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"hsm/prod","hashFunc":5,"rpcOptions":{"keyVersion":"","remoteVerification":false}},"methodName":"publicKey","publicKey":{"publicKeyOptions":{"rpcOptions":{"keyVersion":"","remoteVerification":false}}}}"#;
    const SIGN_NULL_DIGEST: &str = r#"{"initOptions":{"ctxDeadline":"2026-09-01T10:03:00.51+02:00","protocolVersion":"v1","keyResourceID":"pkcs11:token=a;object=b","hashFunc":5,"rpcOptions":{"ctxDeadline":"2026-09-01T10:03:00.51+02:00","keyVersion":"","remoteVerification":false}},"methodName":"signMessage","signMessage":{"signOptions":{"rpcOptions":{"keyVersion":"","remoteVerification":false},"messageOptions":{"digest":null}}}}"#;
    const SIGN_DIGEST: &str = r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"k","hashFunc":5,"rpcOptions":{"keyVersion":"","remoteVerification":false}},"methodName":"signMessage","signMessage":{"signOptions":{"rpcOptions":{"keyVersion":"","remoteVerification":false},"messageOptions":{"digest":"AAECAw==","hashFunc":6}}}}"#;
    const VERIFY: &str = r#"{"initOptions":{"protocolVersion":"v1","keyResourceID":"k","hashFunc":5},"methodName":"verifySignature","verifySignature":{"signature":"MEUC","verifyOptions":{"rpcOptions":{"keyVersion":"","remoteVerification":false},"messageOptions":{"digest":null}}}}"#;

    #[test]
    fn public_key_call_parses() {
        let args: PluginArgs = serde_json::from_str(PUBLIC_KEY).unwrap();
        assert_eq!(args.method_name, "publicKey");
        assert_eq!(args.init_options.key_resource_id, "hsm/prod");
        assert_eq!(args.init_options.hash_func, 5);
        assert_eq!(args.init_options.protocol_version, "v1");
        assert!(args.init_options.ctx_deadline.is_none());
    }

    #[test]
    fn null_digest_is_none_and_deadline_is_kept() {
        let args: PluginArgs = serde_json::from_str(SIGN_NULL_DIGEST).unwrap();
        let sign = args.sign_message.unwrap();
        assert_eq!(sign.sign_options.message_options.digest, None);
        assert_eq!(sign.sign_options.message_options.hash_func, None);
        assert_eq!(
            args.init_options.ctx_deadline.as_deref(),
            Some("2026-09-01T10:03:00.51+02:00")
        );
        assert_eq!(args.init_options.key_resource_id, "pkcs11:token=a;object=b");
    }

    #[test]
    fn given_digest_is_base64_decoded_and_hash_func_is_an_int() {
        let args: PluginArgs = serde_json::from_str(SIGN_DIGEST).unwrap();
        let opts = args.sign_message.unwrap().sign_options.message_options;
        assert_eq!(opts.digest, Some(vec![0, 1, 2, 3]));
        assert_eq!(opts.hash_func, Some(6));
    }

    #[test]
    fn verify_signature_decodes_the_signature() {
        let args: PluginArgs = serde_json::from_str(VERIFY).unwrap();
        assert_eq!(
            args.verify_signature.unwrap().signature,
            vec![0x30, 0x45, 0x02]
        );
    }

    #[test]
    fn bad_base64_is_refused() {
        let bad = SIGN_DIGEST.replace("AAECAw==", "not base64!");
        assert!(serde_json::from_str::<PluginArgs>(&bad).is_err());
    }

    #[test]
    fn answers_carry_base64_pem_and_signatures() {
        let pem = "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n";
        let resp = PluginResp {
            public_key: Some(PublicKeyResp {
                public_key_pem: pem.as_bytes().to_vec(),
            }),
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_str(&resp.to_json()).unwrap();
        let b64 = json["publicKey"]["publicKeyPEM"].as_str().unwrap();
        assert!(
            b64.starts_with("LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K"),
            "{b64}"
        );
        assert!(json.get("errorMessage").is_none());

        let resp = PluginResp {
            sign_message: Some(SignMessageResp {
                signature: vec![0x30, 0x45, 0x02],
            }),
            ..Default::default()
        };
        assert_eq!(resp.to_json(), r#"{"signMessage":{"signature":"MEUC"}}"#);
    }

    #[test]
    fn errors_keep_the_method_object() {
        for (method, key) in [
            (Method::DefaultAlgorithm, "defaultAlgorithm"),
            (Method::SupportedAlgorithms, "supportedAlgorithms"),
            (Method::CreateKey, "createKey"),
            (Method::PublicKey, "publicKey"),
            (Method::SignMessage, "signMessage"),
            (Method::VerifySignature, "verifySignature"),
        ] {
            assert_eq!(Method::parse(key), Some(method));
            let json: serde_json::Value =
                serde_json::from_str(&PluginResp::error(Some(method), "nope").to_json()).unwrap();
            assert_eq!(json["errorMessage"], "nope");
            assert!(json[key].is_object(), "{key}: {json}");
        }
        assert_eq!(
            PluginResp::error(None, "x").to_json(),
            r#"{"errorMessage":"x"}"#
        );
    }
}
