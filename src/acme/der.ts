/**
 * Just enough DER to read what node:crypto's X509Certificate does not expose: the raw serial INTEGER bytes and
 * the Authority Key Identifier, which together name a certificate for ARI (RFC 9773 section 4.1).
 */
interface Tlv {
  tag: number;
  /** Offset of the value within the buffer, and its length. */
  start: number;
  end: number;
  /** Offset just past the value (the next sibling starts here). */
  next: number;
}

function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('DER: truncated header');
  const tag = buf[offset]!;
  let len = buf[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 4 || start + count > buf.length) throw new Error('DER: unsupported length');
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + buf[start + i]!;
    start += count;
  }
  const end = start + len;
  if (end > buf.length) throw new Error('DER: truncated value');
  return { tag, start, end, next: end };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readTlv(buf, at);
    out.push(child);
    at = child.next;
  }
  return out;
}

const AKI_OID = Buffer.from([0x55, 0x1d, 0x23]); // 2.5.29.35

export interface CertIdParts {
  /** The keyIdentifier of the Authority Key Identifier extension, or null when absent. */
  authorityKeyId: Buffer | null;
  /** The serial number's DER INTEGER content bytes, leading zero included. */
  serial: Buffer;
}

/** Reads the serial and AKI keyIdentifier from a DER certificate. */
export function certIdParts(der: Buffer): CertIdParts {
  const cert = readTlv(der, 0);
  const tbs = children(der, cert)[0];
  if (!tbs) throw new Error('DER: no tbsCertificate');
  const fields = children(der, tbs);
  let i = 0;
  if (fields[0]?.tag === 0xa0) i = 1; // [0] version
  const serialTlv = fields[i];
  if (!serialTlv || serialTlv.tag !== 0x02) throw new Error('DER: no serial number');
  const serial = Buffer.from(der.subarray(serialTlv.start, serialTlv.end));
  let authorityKeyId: Buffer | null = null;
  const extsWrapper = fields.find((f) => f.tag === 0xa3); // [3] extensions
  if (extsWrapper) {
    const exts = children(der, extsWrapper)[0];
    for (const ext of exts ? children(der, exts) : []) {
      const parts = children(der, ext);
      const oid = parts[0];
      if (!oid || oid.tag !== 0x06 || !der.subarray(oid.start, oid.end).equals(AKI_OID)) continue;
      const octets = parts[parts.length - 1]!; // extnValue (after the optional critical flag)
      const akiSeq = readTlv(der, octets.start);
      const keyId = children(der, akiSeq).find((c) => c.tag === 0x80); // [0] IMPLICIT keyIdentifier
      if (keyId) authorityKeyId = Buffer.from(der.subarray(keyId.start, keyId.end));
    }
  }
  return { authorityKeyId, serial };
}
