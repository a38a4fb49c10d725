// The node's HTTP JSON API (accounts, setup, devices). The websocket is in
// socket.ts.

import type { EvFile } from './codec';

export interface Me {
  id: string;
  name: string;
  org?: string;
  ext?: boolean;
  active: boolean;
  email: string;
  admin?: boolean;
  device: string;
  expires?: string;
}

export interface Device {
  id: string;
  name: string;
  created: string;
  last_seen: string;
  current: boolean;
}

/** ApiError carries the node's stable error code. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public detail = '',
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch('/api/v1/' + path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'network error');
  }
  if (res.status === 204) return undefined as T;
  const data = await jsonOf(res);
  if (!res.ok) throw errorOf(res.status, data, res.statusText);
  return data as T;
}

/** jsonOf reads a response's JSON body, or null when it has none. */
async function jsonOf(res: Response): Promise<unknown> {
  try {
    return await res.json();
  } catch {
    return null; // not JSON
  }
}

/** responseError is the node's error of a failed response. */
export async function responseError(res: Response): Promise<ApiError> {
  return errorOf(res.status, await jsonOf(res), res.statusText);
}

/** An upload as the node reports it (PROTOCOL.md, "Files"). */
export interface UploadState {
  id: string;
  offset: number;
  size: number;
  chunk_size?: number;
}

/** A file's metadata and antivirus state as the node reports it. */
export type NodeFile = EvFile & { state: string };

export interface ScannerKey {
  enabled: boolean;
  public_key?: string; // base64
  suite?: { kem: number; kdf: number; aead: number };
  info?: string;
}

const up = (id: string) => 'media/uploads/' + encodeURIComponent(id);

export const media = {
  begin: (req: { room: string; name: string; size: number; type?: string; encrypted?: { enc: string; sealed: string } }) => call<UploadState>('POST', 'media/uploads', req),
  status: (id: string) => call<UploadState>('GET', up(id)),
  abort: (id: string) => call<void>('DELETE', up(id)),
  finish: (id: string) => call<{ file: NodeFile }>('POST', up(id) + '/finish'),
  state: (id: string) => call<{ room: string; seq?: number; file: NodeFile }>('GET', 'media/files/' + encodeURIComponent(id) + '/state'),
  scannerKey: () => call<ScannerKey>('GET', 'media/scanner-key'),
};

/** fileURL is where a file (or its thumbnail) is downloaded from. */
export function fileURL(id: string, thumb = false): string {
  return '/api/v1/media/files/' + encodeURIComponent(id) + (thumb ? '/thumb' : '');
}

/** errorOf reads the node's error from a JSON body. */
export function errorOf(status: number, data: unknown, fallback: string): ApiError {
  const e = (data as { error?: { code?: string; message?: string; detail?: string } } | null)?.error;
  return new ApiError(status, e?.code ?? 'http_' + status, e?.message ?? fallback, e?.detail ?? '');
}

export const api = {
  config: () => call<{ name: string; domains: string[]; mail: boolean }>('GET', 'config'),
  register: (email: string, password: string, display_name?: string) =>
    call<{ status: 'verification_sent' | 'pending_approval' }>('POST', 'register', display_name ? { email, password, display_name } : { email, password }),
  verifyToken: (token: string, password: string) => call<{ status: string }>('POST', 'verify', { token, password }),
  verifyCode: (email: string, code: string, password: string) => call<{ status: string }>('POST', 'verify', { email, code, password }),
  login: (email: string, password: string, device: string) => call<Me>('POST', 'login', { email, password, device }),
  logout: () => call<void>('POST', 'logout'),
  me: () => call<Me>('GET', 'me'),
  setName: (display_name: string) => call<void>('PATCH', 'me', { display_name }),
  devices: () => call<{ devices: Device[] }>('GET', 'devices'),
  revokeDevice: (id: string) => call<void>('DELETE', 'devices/' + encodeURIComponent(id)),
  renameDevice: (id: string, name: string) => call<{ name: string }>('PATCH', 'devices/' + encodeURIComponent(id), { name }),
  changePassword: (current: string, next: string) => call<void>('POST', 'password', { current, new: next }),
  requestReset: (email: string) => call<void>('POST', 'password/reset', { email }),
  confirmReset: (token: string, password: string) => call<void>('POST', 'password/reset/confirm', { token, password }),
  renew: (token: string) => call<{ status: string }>('POST', 'renew', { token }),
  setupStatus: () => call<{ needed: boolean; domains: string[]; ca_fingerprint?: string }>('GET', 'setup'),
  setup: (req: { token: string; email: string; password: string; display_name?: string; domains?: string[] }) => call<void>('POST', 'setup', req),
  invitation: (token: string) => call<{ room_name: string; by: string; name: string }>('GET', 'invitation?token=' + encodeURIComponent(token)),
  acceptInvitation: (token: string, password: string, display_name?: string) =>
    call<Me>('POST', 'invitation/accept', display_name ? { token, password, display_name } : { token, password }),
};

/** deviceName describes this browser for the device list. */
export function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Navigateur';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} · ${os}` : browser;
}
