// The admin page's calls to the node (/api/v1/admin/…, administrators
// only; the node checks the role on every request) and the pure helpers of
// its chart, kept apart from the screen so that they are unit-tested.

import { errorOf } from './api';

export interface AdminUser {
  id: string;
  email: string;
  name: string;
  state: 'unverified' | 'pending' | 'active' | 'deactivated' | 'invited';
  unproven?: boolean;
  external?: boolean;
  admin?: boolean;
  created: string;
  expires?: string;
}

export interface Invitation {
  UserID: string;
  Email: string;
  RoomID: string;
  By: string;
  Expires: string;
}

export interface AdminRoom {
  id: string;
  kind: 'direct' | 'group' | 'forum';
  name?: string;
  encrypted?: boolean;
  externals?: boolean;
  members: number;
  created: string;
  last?: string;
}

export interface AuditEntry {
  time: string;
  actor: string;
  unix?: string;
  addr: string;
  action: string;
  target?: string;
  outcome: string;
  actor_email?: string;
  target_email?: string;
}

export interface Series {
  end: number; // Unix minute of the last value
  conns: number[];
  msgs: number[];
  disk: number[];
}

export interface Overview {
  health: Record<string, unknown> & {
    version?: string;
    uptime_s?: number;
    sessions?: number;
    tls?: { mode: string; names?: string[]; not_after?: string; issuer?: string; temporary?: boolean; last_error?: string };
    federation?: unknown;
  };
  disk: { store: number; media: number; free: number; total: number };
  antivirus?: { clamd?: string; up: boolean; version?: string; error?: string; down: string; pending: number; scan_encrypted: boolean };
  mail: boolean;
}

export interface AuditFilter {
  action?: string;
  actor?: string;
  from?: string;
  to?: string;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch('/api/v1/admin/' + path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data: unknown = null;
  try {
    data = await res.json();
  } catch {
    // not JSON
  }
  if (!res.ok) throw errorOf(res.status, data, res.statusText);
  return data as T;
}

/** auditQuery is the query string of a filter (empty fields left out). */
export function auditQuery(f: AuditFilter): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

export type UserAction = 'approve' | 'deactivate' | 'reactivate' | 'promote';

export const admin = {
  overview: () => call<Overview>('GET', 'overview'),
  series: (minutes: number) => call<Series>('GET', 'series?minutes=' + minutes),
  users: (q: string) => call<{ users: AdminUser[] }>('GET', 'users' + (q ? '?q=' + encodeURIComponent(q) : '')),
  user: (action: UserAction, email: string) => call<{ status: string }>('POST', 'users/' + action, { email }),
  reset: (email: string) => call<{ link?: string; mailed?: boolean }>('POST', 'users/reset-password', { email }),
  domains: () => call<{ domains: string[] }>('GET', 'domains'),
  addDomains: (domains: string[]) => call<{ domains: string[] }>('POST', 'domains/add', { domains }),
  removeDomains: (domains: string[]) => call<{ domains: string[] }>('POST', 'domains/remove', { domains }),
  invitations: () => call<{ invitations: Invitation[] | null }>('GET', 'invitations'),
  approveInvitation: (email: string) => call<{ link: string }>('POST', 'invitations/approve', { email }),
  rooms: () => call<{ rooms: AdminRoom[] | null; total: number }>('GET', 'rooms'),
  audit: (f: AuditFilter) => call<{ entries: AuditEntry[] | null; actions: string[] }>('GET', 'audit' + auditQuery(f)),
  csvURL: (f: AuditFilter) => '/api/v1/admin/audit.csv' + auditQuery(f),
};

/** bucket sums values into groups of `size`, the last group ending with the last value. */
export function bucket(values: number[], size: number): number[] {
  if (size <= 1) return values.slice();
  const out: number[] = [];
  for (let end = values.length; end > 0; end -= size) {
    let s = 0;
    for (let i = Math.max(0, end - size); i < end; i++) s += values[i];
    out.unshift(s);
  }
  return out;
}

/** peak keeps the highest value of each group of `size` (connections). */
export function peak(values: number[], size: number): number[] {
  if (size <= 1) return values.slice();
  const out: number[] = [];
  for (let end = values.length; end > 0; end -= size) {
    let m = 0;
    for (let i = Math.max(0, end - size); i < end; i++) m = Math.max(m, values[i]);
    out.unshift(m);
  }
  return out;
}

/** niceMax rounds a maximum up to 1, 2 or 5 times a power of ten (at least 1). */
export function niceMax(v: number): number {
  if (v <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * linePath is the SVG path of values drawn over width × height, the
 * first value at x = 0 and the last at x = width, 0 at the bottom and
 * `top` at the top.
 */
export function linePath(values: number[], width: number, height: number, top: number): string {
  if (values.length === 0) return '';
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values
    .map((v, i) => {
      const x = values.length > 1 ? i * step : width;
      const y = height - (Math.min(v, top) / top) * height;
      return (i === 0 ? 'M' : 'L') + x.toFixed(1) + ' ' + y.toFixed(1);
    })
    .join(' ');
}

/** growth is how much the last value exceeds the one `minutes` earlier (or the first). */
export function growth(values: number[], minutes: number): number {
  if (values.length < 2) return 0;
  const from = values[Math.max(0, values.length - 1 - minutes)];
  return values[values.length - 1] - from;
}
