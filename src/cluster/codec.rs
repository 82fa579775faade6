//! Big-endian readers and writers shared by the metadata image file, controller commands and
//! the controller's log records. Every read checks the bytes that remain, so decoding
//! untrusted bytes fails with [`MetadataError::Corrupt`] and never panics or allocates more
//! than the input holds.

use super::MetadataError;
use crate::auth::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use crate::auth::scram::ScramCredential;
use crate::auth::Mechanism;
use std::collections::BTreeMap;

pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cursor { b }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], MetadataError> {
        if self.b.len() < n {
            return Err(MetadataError::Corrupt("unexpected end of data".into()));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, MetadataError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, MetadataError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, MetadataError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, MetadataError> {
        Ok(self.u32()? as i32)
    }
    pub(crate) fn u64(&mut self) -> Result<u64, MetadataError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, MetadataError> {
        Ok(self.u64()? as i64)
    }
    pub(crate) fn uuid(&mut self) -> Result<[u8; 16], MetadataError> {
        let mut id = [0u8; 16];
        id.copy_from_slice(self.take(16)?);
        Ok(id)
    }
    pub(crate) fn string(&mut self) -> Result<String, MetadataError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| MetadataError::Corrupt("string not UTF-8".into()))
    }
    pub(crate) fn opt_string(&mut self) -> Result<Option<String>, MetadataError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(MetadataError::Corrupt("bad optional-string flag".into())),
        }
    }
    pub(crate) fn configs(&mut self) -> Result<BTreeMap<String, String>, MetadataError> {
        let n = self.u16()?;
        let mut configs = BTreeMap::new();
        for _ in 0..n {
            let k = self.string()?;
            configs.insert(k, self.string()?);
        }
        Ok(configs)
    }
    /// A replica list: `count u16 | count × node id i32`, at most [`MAX_REPLICAS`] entries.
    pub(crate) fn replicas(&mut self) -> Result<Vec<i32>, MetadataError> {
        let n = self.u16()? as usize;
        if n > MAX_REPLICAS {
            return Err(MetadataError::Corrupt(format!("{n} replicas")));
        }
        (0..n).map(|_| self.i32()).collect()
    }
    /// `u16 len | bytes`.
    pub(crate) fn bytes16(&mut self) -> Result<Vec<u8>, MetadataError> {
        let n = self.u16()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    /// A stored SCRAM credential (see [`put_scram`]), validated.
    pub(crate) fn scram(&mut self) -> Result<ScramCredential, MetadataError> {
        let t = self.u8()? as i8;
        let mechanism = Mechanism::from_scram_type(t)
            .ok_or_else(|| MetadataError::Corrupt(format!("SCRAM mechanism type {t}")))?;
        let c = ScramCredential {
            mechanism,
            iterations: self.i32()?,
            salt: self.bytes16()?,
            stored_key: self.bytes16()?,
            server_key: self.bytes16()?,
        };
        c.validate().map_err(MetadataError::Corrupt)?;
        Ok(c)
    }
    /// A stored ACL binding (see [`put_acl`]), validated.
    pub(crate) fn acl(&mut self) -> Result<AclBinding, MetadataError> {
        fn code<T>(v: Option<T>, what: &str, c: u8) -> Result<T, MetadataError> {
            v.ok_or_else(|| MetadataError::Corrupt(format!("ACL {what} code {c}")))
        }
        let t = self.u8()?;
        let resource_type = code(ResourceType::from_code(t as i8), "resource type", t)?;
        let t = self.u8()?;
        let pattern_type = code(PatternType::from_code(t as i8), "pattern type", t)?;
        let resource_name = self.string()?;
        let principal = self.string()?;
        let host = self.string()?;
        let t = self.u8()?;
        let operation = code(Operation::from_code(t as i8), "operation", t)?;
        let t = self.u8()?;
        let permission = code(Permission::from_code(t as i8), "permission", t)?;
        let b = AclBinding {
            resource_type,
            pattern_type,
            resource_name,
            principal,
            host,
            operation,
            permission,
        };
        b.validate().map_err(|e| MetadataError::Corrupt(e.0))?;
        Ok(b)
    }
    pub(crate) fn finish(&self) -> Result<(), MetadataError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(MetadataError::Corrupt("trailing bytes".into()))
        }
    }
}

/// Largest replica set a partition may have.
pub const MAX_REPLICAS: usize = 16;

/// Write a `u16`-length string. Kafka strings are at most `i16::MAX` bytes and topic names,
/// hosts and racks are validated shorter, so the cut at `u16::MAX` never happens in practice.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..n]);
}

pub(crate) fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

pub(crate) fn put_configs(out: &mut Vec<u8>, configs: &BTreeMap<String, String>) {
    out.extend_from_slice(&(configs.len().min(u16::MAX as usize) as u16).to_be_bytes());
    for (k, v) in configs.iter().take(u16::MAX as usize) {
        put_str(out, k);
        put_str(out, v);
    }
}

pub(crate) fn put_bytes16(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&b[..n]);
}

/// `mechanism type u8 | iterations i32 | salt | stored_key | server_key`, each byte string
/// `u16 len | bytes` (lengths are validated far below the cut).
pub(crate) fn put_scram(out: &mut Vec<u8>, c: &ScramCredential) {
    out.push(c.mechanism.scram_type() as u8);
    out.extend_from_slice(&c.iterations.to_be_bytes());
    put_bytes16(out, &c.salt);
    put_bytes16(out, &c.stored_key);
    put_bytes16(out, &c.server_key);
}

/// `resource_type u8 | pattern_type u8 | resource_name | principal | host | operation u8 |
/// permission u8` (Kafka's codes; strings `u16 len | UTF-8`, validated far below the cut).
pub(crate) fn put_acl(out: &mut Vec<u8>, b: &AclBinding) {
    out.push(b.resource_type.code() as u8);
    out.push(b.pattern_type.code() as u8);
    put_str(out, &b.resource_name);
    put_str(out, &b.principal);
    put_str(out, &b.host);
    out.push(b.operation.code() as u8);
    out.push(b.permission.code() as u8);
}

pub(crate) fn put_replicas(out: &mut Vec<u8>, replicas: &[i32]) {
    out.extend_from_slice(&(replicas.len() as u16).to_be_bytes());
    for r in replicas {
        out.extend_from_slice(&r.to_be_bytes());
    }
}

/// Frame `body` as `magic[4] | format u16 | len u32 | crc32 u32 | body`.
pub(crate) fn frame(magic: &[u8; 4], format: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&format.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Check a [`frame`]d file and return `(format, body)`.
pub(crate) fn unframe<'a>(
    magic: &[u8; 4],
    bytes: &'a [u8],
) -> Result<(u16, &'a [u8]), MetadataError> {
    let corrupt = |why: &str| Err(MetadataError::Corrupt(why.into()));
    if bytes.len() < 14 || &bytes[0..4] != magic {
        return corrupt("bad magic or short header");
    }
    let format = u16::from_be_bytes([bytes[4], bytes[5]]);
    let len = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    let crc = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
    let body = &bytes[14..];
    if body.len() != len {
        return corrupt("body length does not match the header");
    }
    if crc32fast::hash(body) != crc {
        return corrupt("CRC mismatch");
    }
    Ok((format, body))
}
