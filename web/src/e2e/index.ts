// The MLS chunk: loaded by crypto.ts with a dynamic import, only when the
// device must publish its keys or meets an encrypted room. Its exports are
// the module's interface to the rest of the client (the manager, the QR
// encoder of the verification screen) and to tools that load it in a page
// (the browser tests' measurements, forged commits and forged edits): chunkName lets
// them find this file among the built assets.

import { Manager } from './manager';

export const chunkName = 'relais:e2e-chunk';
export const manager = new Manager();
export * as engine from './engine';
export { bench } from './bench';
export { qr } from './qr';
export { formatKey, parseKey } from './backup';
export { sealToScanner, checkSuite } from './scanner';
export { plainOf } from '../crypto';
