// Decrypt the encrypted_data of a completion with the client's secret key,
// in Node.js with its built-in crypto module (no dependencies).
//
//   SECRET_KEY=sk_... node decrypt_result.mjs < completion.json
//
// Run it on your backend: the secret key never goes to a browser.
import { createHash, createDecipheriv } from 'node:crypto';

export function decrypt(encryptedData, secretKey) {
  // key = SHA-256 of the secret key's UTF-8 bytes
  const key = createHash('sha256').update(secretKey, 'utf8').digest();
  const data = Buffer.from(encryptedData.encrypted_payload, 'base64');
  let plain;
  if (encryptedData.encryption_method === 'AES-256-GCM') {
    // base64(nonce(12) || ciphertext || tag(16)); final() throws if anything was changed
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
    decipher.setAuthTag(data.subarray(data.length - 16));
    plain = Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
  } else if (encryptedData.encryption_method === 'AES-256-CBC') {
    // base64(IV(16) || ciphertext), PKCS7 padding (removed by final())
    const decipher = createDecipheriv('aes-256-cbc', key, data.subarray(0, 16));
    plain = Buffer.concat([decipher.update(data.subarray(16)), decipher.final()]);
  } else {
    throw new Error('unknown encryption_method ' + encryptedData.encryption_method);
  }
  return JSON.parse(plain.toString('utf8'));
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const message = JSON.parse(input);
  const result = decrypt(message.encrypted_data || message, process.env.SECRET_KEY);
  console.log(JSON.stringify(result));
});
