// Attachments: uploads and downloads (PROTOCOL.md, "Files").
//
// An upload goes in chunks (PUT …?offset=N), resumes from the node's
// offset (GET the upload) after a broken connection or a refused chunk,
// is finished, then posted in the room through the outbox. In an encrypted
// room the file is first encrypted in the browser ("relais file v1",
// sealed.ts), the key is sealed to the node's scanner key when the node
// scans encrypted files, and the post is an MLS application message
// carrying the key, the real name and type, and a thumbnail made here.
//
// Downloads are fetched with a progress bar, then (encrypted) checked and
// decrypted, and saved under the file's name.

import { ApiError, errorOf, fileURL, media, responseError, ScannerKey, UploadState } from './api';
import type { FileView } from './codec';
import { e2eChunk } from './crypto';
import { newID } from './outbox';
import type { FileRef } from './payload';
import { decryptFile, encryptFile, fromB64, newFileKey, sealedSize, sha256, sha256Blob, toB64 } from './sealed';
import { store } from './store';

export type UploadPhase = 'preparing' | 'uploading' | 'finishing' | 'posting' | 'posted' | 'failed';

export interface Upload {
  key: string; // local id, also the post's idempotency id (the event's cid)
  room: string;
  name: string;
  size: number; // of the file
  mime: string;
  phase: UploadPhase;
  /** Bytes done of the current phase (of total). */
  done: number;
  total: number;
  error?: string; // a code (err.* / file.err.*)
  /** The node's upload and file. */
  upload?: string;
  file?: string;
  encrypted: boolean;
  /** What is uploaded: the file, or its encrypted blob. */
  blob?: Blob;
  ref?: FileRef;
  abort: AbortController;
}

/** Errors of a chunk after which the upload resumes from the node's
 * offset; others end it. */
const resumable = new Set(['network', 'offset_mismatch', 'interrupted', 'busy', 'unavailable', 'internal', 'rate_limited', 'timeout', 'http_502', 'http_503', 'http_504']);

const uploads = new Map<string, Upload>();

function changed(u: Upload): void {
  store.emit('room:' + u.room);
  store.emit('uploads');
}

/** roomUploads lists a room's uploads in progress (or failed), oldest
 * first. */
export function roomUploads(room: string): Upload[] {
  const out: Upload[] = [];
  for (const u of uploads.values()) {
    if (u.room !== room) continue;
    if (u.phase === 'posted' && shownInRoom(u)) uploads.delete(u.key);
    else out.push(u);
  }
  return out;
}

/** shownInRoom tells whether the upload's message is in the timeline. */
function shownInRoom(u: Upload): boolean {
  const tl = store.rooms.get(u.room)?.timeline ?? [];
  for (let i = tl.length - 1; i >= 0 && i >= tl.length - 300; i--) if (tl[i].cid === u.key) return true;
  return false;
}

// An upload's row goes once its message is in the timeline.
store.outboxWatchers.add((e) => {
  const u = uploads.get(e.id);
  if (!u) return;
  if (e.state === 'failed') {
    if (e.code === 'discarded') return void uploads.delete(e.id);
    u.phase = 'failed';
    u.error = e.code === 'quarantined' ? quarantineCode(u) : e.code;
    changed(u);
  } else if (e.state === 'sent') {
    // The row stays until the message shows (roomUploads drops it).
    u.phase = 'posted';
    if (shownInRoom(u)) uploads.delete(e.id);
    changed(u);
  }
});

function quarantineCode(u: Upload): string {
  return quarantined(u.file ? store.fileStates.get(u.file)?.code : undefined);
}

/** quarantined is the error code shown for a file the antivirus refused
 * for reason code (Files.tsx reads it back). */
function quarantined(code: string | undefined): string {
  return 'quarantined.' + (code || 'infected');
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

/** putChunk sends bytes at offset with an XMLHttpRequest (fetch has no
 * upload progress); it resolves with the node's new offset. */
function putChunk(id: string, offset: number, body: Blob, progress: (n: number) => void, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', '/api/v1/media/uploads/' + encodeURIComponent(id) + '?offset=' + offset);
    x.setRequestHeader('Content-Type', 'application/offset+octet-stream');
    x.responseType = 'json';
    x.upload.onprogress = (e) => progress(e.loaded);
    x.onload = () => {
      if (x.status >= 200 && x.status < 300) resolve(Number((x.response as UploadState | null)?.offset ?? offset + body.size));
      else reject(errorOf(x.status, x.response, x.statusText));
    };
    x.onerror = () => reject(new ApiError(0, 'network', 'network error'));
    x.ontimeout = () => reject(new ApiError(0, 'network', 'timeout'));
    signal.addEventListener('abort', () => x.abort(), { once: true });
    x.onabort = () => reject(new DOMException('cancelled', 'AbortError'));
    x.send(body);
  });
}

let scannerKey: Promise<ScannerKey> | null = null;
let scanning: boolean | null = null;

/** scanner asks the node (once per page) whether it scans encrypted
 * files, and with which key. */
function scanner(): Promise<ScannerKey> {
  if (!scannerKey) {
    scannerKey = media.scannerKey();
    scannerKey.then(
      (k) => {
        if (scanning !== k.enabled) {
          scanning = k.enabled;
          store.emit('scanner');
        }
      },
      () => (scannerKey = null),
    );
  }
  return scannerKey;
}

/** scansEncryptedFiles tells whether the node's antivirus gets the key of
 * each file sent in an encrypted room (so that users are told): null until
 * the node has answered, 'scanner' is emitted when it has. */
export function scansEncryptedFiles(): boolean | null {
  // Rooms render often: after a failed question, ask again at most every
  // 30 s.
  if (scanning === null && !scannerKey && Date.now() - lastAsked > 30_000) {
    lastAsked = Date.now();
    scanner().catch(() => {});
  }
  return scanning;
}

let lastAsked = 0;

/** picture reads the size of a picture and makes a thumbnail fitting
 * 320×320 (JPEG), for encrypted rooms where the node cannot. */
async function picture(file: Blob): Promise<{ w: number; h: number; thumb?: FileRef['thumb'] } | null> {
  if (!/^image\/(jpeg|png|gif|webp|bmp|avif)$/.test(file.type) || typeof createImageBitmap === 'undefined') return null;
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(file);
  } catch {
    return null;
  }
  const w = bmp.width;
  const h = bmp.height;
  try {
    const s = Math.min(1, 320 / Math.max(w, h));
    const tw = Math.max(1, Math.round(w * s));
    const th = Math.max(1, Math.round(h * s));
    const c = document.createElement('canvas');
    c.width = tw;
    c.height = th;
    const ctx = c.getContext('2d');
    if (!ctx) return { w, h };
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, tw, th);
    ctx.drawImage(bmp, 0, 0, tw, th);
    for (const q of [0.8, 0.6, 0.4]) {
      const b = await new Promise<Blob | null>((res) => c.toBlob(res, 'image/jpeg', q));
      if (!b) break;
      const data = toB64(new Uint8Array(await b.arrayBuffer()));
      if (data.length <= 90 * 1024) return { w, h, thumb: { data, mime: 'image/jpeg', w: tw, h: th } };
    }
    return { w, h };
  } finally {
    bmp.close();
  }
}

/** send uploads files to a room and posts each in turn. */
export function sendFiles(room: string, files: File[]): void {
  for (const f of files) {
    const r = store.rooms.get(room);
    const u: Upload = {
      key: newID(),
      room,
      name: f.name || 'image',
      size: f.size,
      mime: f.type || 'application/octet-stream',
      phase: 'preparing',
      done: 0,
      total: f.size,
      encrypted: !!r?.encrypted,
      abort: new AbortController(),
    };
    uploads.set(u.key, u);
    changed(u);
    void run(u, f);
  }
}

async function run(u: Upload, f: File): Promise<void> {
  const signal = u.abort.signal;
  try {
    if (!u.upload) {
      let begin: Parameters<typeof media.begin>[0];
      if (u.encrypted) {
        const key = newFileKey();
        const [pic, hash] = await Promise.all([picture(f), sha256Blob(f)]);
        u.blob = await encryptFile(f, key, (n) => ((u.done = n), changed(u)), signal);
        u.ref = { id: '', name: u.name, size: f.size, mime: u.mime, key: toB64(key), hash: toB64(hash) };
        if (pic) Object.assign(u.ref, { w: pic.w, h: pic.h }, pic.thumb ? { thumb: pic.thumb } : {});
        begin = { room: u.room, name: 'file', size: sealedSize(f.size) };
        const sk = await scanner();
        if (sk.enabled) {
          const c = await e2eChunk();
          c.checkSuite(sk.suite, sk.info);
          const s = await c.sealToScanner(fromB64(sk.public_key ?? ''), key);
          begin.encrypted = { enc: toB64(s.enc), sealed: toB64(s.sealed) };
        }
      } else {
        u.blob = f;
        begin = { room: u.room, name: u.name, size: f.size };
        if (f.type) begin.type = f.type;
      }
      signal.throwIfAborted();
      u.upload = (await media.begin(begin)).id;
    }
    await sendChunks(u, signal);
    u.phase = 'finishing';
    changed(u);
    const { file } = await media.finish(u.upload);
    // Cancelled while the node was checking it: it is not posted (the
    // node deletes unposted files after a day).
    signal.throwIfAborted();
    u.file = file.id;
    u.blob = undefined;
    if (file.state === 'quarantined') throw new ApiError(0, quarantined(file.code), '');
    u.phase = 'posting';
    changed(u);
    if (u.ref) {
      u.ref.id = file.id;
      store.outbox.add({ room: u.room, type: 'file', file: u.ref }, u.key);
    } else store.outbox.add({ room: u.room, type: 'file', file: { id: file.id } }, u.key);
  } catch (e) {
    if (signal.aborted) return;
    u.phase = 'failed';
    u.error = e instanceof ApiError ? e.code : e instanceof Error && e.name === 'UndecryptableError' ? 'undecryptable' : 'generic';
    if (!(e instanceof ApiError)) console.warn('relais upload:', e);
    changed(u);
  }
}

/** sendChunks sends the upload's bytes from where the node stands. */
async function sendChunks(u: Upload, signal: AbortSignal): Promise<void> {
  const blob = u.blob!;
  const st = await media.status(u.upload!);
  let offset = st.offset;
  const chunk = Math.max(64 * 1024, Math.min(st.chunk_size || 1 << 20, 4 << 20));
  u.phase = 'uploading';
  u.total = blob.size;
  u.done = offset;
  changed(u);
  let failures = 0;
  while (offset < blob.size) {
    const end = Math.min(offset + chunk, blob.size);
    try {
      offset = await putChunk(u.upload!, offset, blob.slice(offset, end), (n) => ((u.done = offset + n), changed(u)), signal);
      failures = 0;
    } catch (e) {
      signal.throwIfAborted();
      const code = e instanceof ApiError ? e.code : 'network';
      if (!resumable.has(code) || ++failures > 30) throw e;
      // The connection broke or the chunk was refused: ask the node where
      // the upload stands and go on from there, waiting a little longer
      // each time.
      await sleep(Math.min(250 * 2 ** Math.min(failures, 6), 8000), signal);
      try {
        offset = (await media.status(u.upload!)).offset;
      } catch (se) {
        if (!(se instanceof ApiError) || !resumable.has(se.code)) throw se;
      }
    }
    u.done = offset;
    changed(u);
  }
}

/** cancel stops an upload and deletes what the node has of it. */
export function cancelUpload(key: string): void {
  const u = uploads.get(key);
  if (!u || u.phase === 'posting' || u.phase === 'posted') return;
  u.abort.abort();
  uploads.delete(key);
  if (u.upload && !u.file) void media.abort(u.upload).catch(() => {});
  changed(u);
}

/** retryUpload starts a failed upload again from where the node stands. */
export function retryUpload(key: string): boolean {
  const u = uploads.get(key);
  if (!u || u.phase !== 'failed' || !u.blob || !u.upload || u.file) return false;
  u.abort = new AbortController();
  u.error = undefined;
  u.phase = 'uploading';
  changed(u);
  void run(u, u.blob as File);
  return true;
}

/** dismiss forgets a failed upload. */
export function dismissUpload(key: string): void {
  const u = uploads.get(key);
  if (!u) return;
  uploads.delete(key);
  if (u.upload && !u.file) void media.abort(u.upload).catch(() => {});
  changed(u);
}

// Downloads.

export interface Download {
  done: number;
  total: number;
  error?: string;
}

const downloads = new Map<string, Download>();

export function downloadOf(id: string): Download | undefined {
  return downloads.get(id);
}

/** fetchBytes downloads a file with its progress. */
async function fetchBytes(id: string, room: string, d: Download): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(fileURL(id), { credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', 'network error');
  }
  if (!res.ok) throw await responseError(res);
  const total = Number(res.headers.get('Content-Length')) || d.total;
  d.total = total;
  const out = new Uint8Array(total);
  let n = 0;
  const reader = res.body!.getReader();
  let chunks: Uint8Array[] | null = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!chunks && n + value.length <= out.length) out.set(value, n);
    else {
      // Longer than announced: keep the pieces.
      chunks ??= [out.subarray(0, n)];
      chunks.push(value);
    }
    n += value.length;
    d.done = n;
    store.emit('room:' + room);
  }
  if (chunks) {
    const all = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) (all.set(c, at), (at += c.length));
    return all;
  }
  return out.subarray(0, n);
}

const urls = new Map<string, string>();

/** saveAs offers bytes as a download named name. */
function saveAs(bytes: Uint8Array, name: string, mime: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: mime || 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name || 'fichier';
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** openBytes fetches (and decrypts) a file's bytes. */
async function openBytes(f: FileView, room: string, d: Download): Promise<Uint8Array> {
  const bytes = await fetchBytes(f.id, room, d);
  if (!f.enc) return bytes;
  const plain = await decryptFile(bytes, fromB64(f.enc.key));
  const hash = toB64(await sha256(plain));
  if (hash !== f.enc.hash || plain.length !== f.enc.size) throw new ApiError(0, 'undecryptable', 'hash mismatch');
  return plain;
}

/** download downloads a file (decrypting it in encrypted rooms) with a
 * progress bar, then saves it. */
export function download(f: FileView, room: string): Promise<void> {
  return fetchFile(f, room, (bytes) => saveAs(bytes, f.name, f.mime));
}

/** Viewer is the picture shown full screen. */
export interface Viewer {
  f: FileView;
  url: string; // blob: URL of the whole picture, decrypted
}

let viewer: Viewer | null = null;

/** viewerOf is the picture shown full screen, if any ('viewer' is emitted
 * when it changes). */
export function viewerOf(): Viewer | null {
  return viewer;
}

/** view downloads a picture (decrypting it in encrypted rooms) with a
 * progress bar, then shows it full screen. */
export function view(f: FileView, room: string): Promise<void> {
  return fetchFile(f, room, (bytes) => {
    closeViewer();
    viewer = { f, url: URL.createObjectURL(new Blob([bytes as BlobPart], { type: f.mime })) };
    store.emit('viewer');
  });
}

/** closeViewer closes the full-screen picture. */
export function closeViewer(): void {
  if (!viewer) return;
  URL.revokeObjectURL(viewer.url);
  viewer = null;
  store.emit('viewer');
}

/** fetchFile fetches (and decrypts) a file with a progress bar in its
 * message, then hands its bytes to use; a failure shows in the message. */
async function fetchFile(f: FileView, room: string, use: (bytes: Uint8Array) => void): Promise<void> {
  if (downloads.get(f.id) && !downloads.get(f.id)!.error) return;
  const d: Download = { done: 0, total: f.enc ? sealedSize(f.size) : f.size };
  downloads.set(f.id, d);
  store.emit('room:' + room);
  try {
    use(await openBytes(f, room, d));
    downloads.delete(f.id);
  } catch (e) {
    d.error = e instanceof ApiError ? (e.code === 'quarantined' ? quarantined(e.detail) : e.code) : 'undecryptable';
    if (!(e instanceof ApiError)) console.warn('relais download:', e);
  }
  store.emit('room:' + room);
}

/** inlineThumb is a blob: URL of an encrypted file's thumbnail, made from
 * the bytes the encrypted message carries. */
export function inlineThumb(f: FileView): string | undefined {
  const t = f.enc?.thumb;
  if (!t) return undefined;
  let url = urls.get(f.id);
  if (!url) {
    url = URL.createObjectURL(new Blob([fromB64(t.data) as BlobPart], { type: t.mime }));
    urls.set(f.id, url);
  }
  return url;
}
