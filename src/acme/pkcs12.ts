/**
 * PKCS#12 (RFC 7292) keystores built with forge's ASN.1, PBES2 and PKCS#12 key derivation. forge's own
 * toPkcs12Asn1 takes RSA keys only, and guardctl's default keys are EC; so the key goes in as the PKCS#8 that
 * node:crypto exports, whatever its type. With a password the key is shrouded with PBES2 (PBKDF2-HMAC-SHA256,
 * AES-256-CBC) and the file carries an HMAC-SHA256 MAC: OpenSSL 3's own defaults, which OpenSSL 3 reads without
 * -legacy and Java (8u301+, 11+) reads too. Certificates are public and stay unencrypted.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import forge from 'node-forge';

const { asn1, pki } = forge;
type Node = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;

/** Iterations for the key's PBKDF2 and the MAC's key derivation (OpenSSL 3's PKCS12_DEFAULT_ITER). */
export const PKCS12_ITERATIONS = 2048;

const seq = (nodes: Node[]) => asn1.create(U, T.SEQUENCE, true, nodes);
const set = (nodes: Node[]) => asn1.create(U, T.SET, true, nodes);
const oid = (id: string) => asn1.create(U, T.OID, false, asn1.oidToDer(id).getBytes());
const octets = (binary: string) => asn1.create(U, T.OCTETSTRING, false, binary);
const integer = (n: number) => asn1.create(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());
const explicit0 = (node: Node) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [node]);
const toDer = (node: Node) => asn1.toDer(node).getBytes();
const binary = (buf: Buffer) => buf.toString('binary');
const OIDS = pki.oids as Record<string, string>;

export interface Pkcs12Input {
  /** The private key, PEM (any type node:crypto reads). */
  keyPem: string;
  /** The leaf certificate first, then its chain (PEM each). */
  certPems: string[];
  /** null: no encryption and no MAC (the caller asked for --no-password on purpose). */
  password: string | null;
  /** The friendlyName (alias) of the key and its certificate. */
  friendlyName: string;
}

/** The DER bytes of a .p12/.pfx holding the key, the leaf with the same localKeyId, and the chain. */
export function buildPkcs12(input: Pkcs12Input): Buffer {
  const certDers = input.certPems.map((pem) => new X509Certificate(pem).raw);
  if (certDers.length === 0) throw new Error('no certificate to put in the keystore');
  // Java pairs the key with its certificate by localKeyId: the SHA-1 of the leaf, as forge and OpenSSL use.
  const sha1 = forge.md.sha1.create();
  sha1.update(binary(certDers[0]!));
  const attrs = set([
    seq([oid(OIDS.localKeyId!), set([octets(sha1.digest().getBytes())])]),
    seq([oid(OIDS.friendlyName!), set([asn1.create(U, T.BMPSTRING, false, input.friendlyName)])]),
  ]);
  const certBags = certDers.map((der, i) => seq([
    oid(OIDS.certBag!),
    explicit0(seq([oid(OIDS.x509Certificate!), explicit0(octets(binary(der)))])),
    ...(i === 0 ? [attrs] : []),
  ]));
  const pkcs8 = asn1.fromDer(binary(createPrivateKey(input.keyPem).export({ type: 'pkcs8', format: 'der' })));
  const keyBag = input.password === null
    ? seq([oid(OIDS.keyBag!), explicit0(pkcs8), attrs])
    : seq([oid(OIDS.pkcs8ShroudedKeyBag!), explicit0(pki.encryptPrivateKeyInfo(pkcs8, forge.util.encodeUtf8(input.password), {
      algorithm: 'aes256', prfAlgorithm: 'sha256', count: PKCS12_ITERATIONS, saltSize: 16,
    } as forge.pki.EncryptionOptions)), attrs]);
  const data = (bags: Node[]) => seq([oid(OIDS.data!), explicit0(octets(toDer(seq(bags))))]);
  const authSafe = toDer(seq([data(certBags), data([keyBag])]));
  return Buffer.from(toDer(seq([
    integer(3),
    seq([oid(OIDS.data!), explicit0(octets(authSafe))]),
    ...(input.password === null ? [] : [macData(authSafe, input.password)]),
  ])), 'binary');
}

/** RFC 7292 section 5: HMAC over the AuthenticatedSafe with a key from the PKCS#12 KDF (ID 3). */
function macData(authSafe: string, password: string): Node {
  const salt = binary(randomBytes(16));
  const key = forge.pkcs12.generateKey(password, forge.util.createBuffer(salt), 3, PKCS12_ITERATIONS, 32, forge.md.sha256.create());
  const hmac = forge.hmac.create();
  hmac.start('sha256', key);
  hmac.update(authSafe);
  return seq([
    seq([seq([oid(OIDS.sha256!), asn1.create(U, T.NULL, false, '')]), octets(hmac.digest().getBytes())]),
    octets(salt),
    integer(PKCS12_ITERATIONS),
  ]);
}
