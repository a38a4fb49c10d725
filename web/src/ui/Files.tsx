// Files in the timeline: a picture inline (the node's thumbnail, or the
// thumbnail carried by an encrypted message), other documents as cards;
// the antivirus state; downloads with a progress bar; and the rows of
// uploads in progress.

import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { fileURL } from '../api';
import type { FileView } from '../codec';
import { formatSize, has, MessageKey, t } from '../i18n';
import { store } from '../store';
import { cancelUpload, closeViewer, dismissUpload, download, downloadOf, inlineThumb, retryUpload, Upload, view, viewerOf } from '../uploads';
import { Icon } from './common';
import { useTopics } from './hooks';

/** codeText explains why the antivirus refused a file. */
function codeText(code: string | undefined): string {
  const k = 'file.code.' + (code || 'other');
  return has(k) ? t(k as MessageKey) : t('file.code.other');
}

/** fileError explains a failed upload or download. */
export function fileError(code: string | undefined): string {
  const c = code || 'generic';
  if (c.startsWith('quarantined.')) return t('file.quarantinedShort', { reason: codeText(c.slice('quarantined.'.length)) });
  if (has('file.err.' + c)) return t(('file.err.' + c) as MessageKey);
  if (has('file.code.' + c)) return t(('file.code.' + c) as MessageKey);
  if (has('err.' + c) && c !== 'too_large') return t(('err.' + c) as MessageKey);
  return t('file.err.generic');
}

function percent(done: number, total: number): number {
  return total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
}

function Progress({ done, total, label }: { done: number; total: number; label: string }): JSX.Element {
  const p = percent(done, total);
  return (
    <div class="progress-wrap">
      <progress max={100} value={p} aria-label={label} />
      <span class="progress-text">{label}</span>
    </div>
  );
}

/** kindOf names a document's type briefly: its extension, or its type. */
function kindOf(f: FileView): string {
  const ext = /\.([A-Za-z0-9]{1,8})$/.exec(f.name)?.[1];
  if (ext) return ext.toUpperCase();
  return f.mime.split('/')[1]?.toUpperCase() ?? '';
}

/** fit scales a picture's size to fit a box. */
function fit(w: number, h: number, box: number): { w: number; h: number } {
  const s = Math.min(1, box / Math.max(w, h));
  return { w: Math.max(1, Math.round(w * s)), h: Math.max(1, Math.round(h * s)) };
}

function StateLine({ f }: { f: FileView }): JSX.Element | null {
  switch (f.state) {
    case 'pending':
      return (
        <span class="file-state" data-file-state="pending">
          <Icon name="clock" size={14} /> {t('file.pending')}
        </span>
      );
    case 'clean':
      return (
        // Only a file clamd passed is credited to the antivirus.
        <span class="file-state ok" data-file-state="clean" data-checked={f.checked ?? ''}>
          <Icon name="shield" size={14} /> {f.checked === 'antivirus' ? t('file.clean') : t('file.policyChecked')}
        </span>
      );
    case 'unscanned':
      return (
        <span class="file-state" data-file-state="unscanned">
          <Icon name="lock" size={14} /> {t('file.unscanned')}
        </span>
      );
    default:
      return null;
  }
}

interface Props {
  f: FileView;
  room: string;
  mine: boolean;
}

/** FileBlock is the file of a message. */
export function FileBlock({ f, room, mine }: Props): JSX.Element {
  if (f.state === 'quarantined') {
    return (
      <div class="file-card quarantined" role="note" data-file-state="quarantined" data-code={f.code ?? ''} data-file={f.id}>
        <Icon name="alert" size={18} /> <span>{f.name ? t('file.quarantined', { name: f.name, reason: codeText(f.code) }) : t('file.quarantinedShort', { reason: codeText(f.code) })}</span>
      </div>
    );
  }
  // The node serves a file others may read once the antivirus passed it
  // (or, encrypted and not scanned, at once); its uploader, always.
  const readable = f.state === 'clean' || f.state === 'unscanned' || mine;
  const d = downloadOf(f.id);
  const dl = (
    <div class="file-dl">
      {d && !d.error ? (
        <Progress done={d.done} total={d.total} label={t('file.downloading', { percent: percent(d.done, d.total) })} />
      ) : (
        <button class="secondary small file-download" disabled={!readable} aria-label={t('file.downloadLabel', { name: f.name })} onClick={() => void download(f, room)}>
          <Icon name="download" size={16} /> {t('file.download')}
        </button>
      )}
      {d?.error && (
        <span class="error-text" role="alert">
          {t('file.downloadFailed', { reason: fileError(d.error) })}
        </span>
      )}
    </div>
  );
  const meta = (
    <div class="file-meta">
      <span class="file-name" title={f.name}>
        {f.name}
      </span>
      <span class="file-size">
        {formatSize(f.size)}
        {kindOf(f) ? ' · ' + kindOf(f) : ''}
      </span>
      <StateLine f={f} />
    </div>
  );
  // Pictures: the space is reserved from the dimensions, so that the
  // timeline does not jump when the thumbnail arrives.
  if (f.mime.startsWith('image/') && f.w && f.h && (f.nodeThumb || f.enc?.thumb)) {
    const box = fit(f.w, f.h, 320);
    const src = f.enc ? inlineThumb(f) : readable ? fileURL(f.id, true) : undefined;
    const img = src && <img src={src} width={box.w} height={box.h} alt={f.name} loading="lazy" decoding="async" />;
    return (
      <figure class="file-picture" data-file={f.id} data-file-state={f.state}>
        {img && readable ? (
          <button class="picture-open" aria-label={t('file.view', { name: f.name })} onClick={() => void view(f, room)}>
            {img}
          </button>
        ) : (
          img || (
            <div class="picture-placeholder" style={{ width: box.w + 'px', aspectRatio: box.w + ' / ' + box.h }} role="img" aria-label={f.name}>
              <Icon name="clock" size={24} />
            </div>
          )
        )}
        <figcaption>
          {meta}
          {dl}
        </figcaption>
      </figure>
    );
  }
  return (
    <div class="file-card" data-file={f.id} data-file-state={f.state}>
      <span class="file-icon">
        <Icon name="file" size={28} />
      </span>
      <div class="file-body">
        {meta}
        {dl}
      </div>
    </div>
  );
}

/** UploadRow is a file on its way: progress, cancel, or why it failed. */
export function UploadRow({ u }: { u: Upload }): JSX.Element {
  let label = '';
  switch (u.phase) {
    case 'preparing':
      label = t('file.preparing', { percent: percent(u.done, u.total) });
      break;
    case 'uploading':
      label = t('file.uploading', { percent: percent(u.done, u.total) });
      break;
    case 'finishing':
      label = t('file.finishing');
      break;
    case 'posting':
    case 'posted':
      label = t('file.posting');
      break;
  }
  return (
    <div class={'msg mine upload' + (u.phase === 'failed' ? ' failed' : '')} data-upload={u.key} data-phase={u.phase}>
      <div class="bubble">
        <div class="file-card">
          <span class="file-icon">
            <Icon name="file" size={28} />
          </span>
          <div class="file-body">
            <div class="file-meta">
              <span class="file-name" title={u.name}>
                {u.name}
              </span>
              <span class="file-size">{formatSize(u.size)}</span>
            </div>
            {u.phase === 'failed' ? (
              <div class="failed-actions" role="alert">
                <span>{t('file.failed', { reason: fileError(u.error) })}</span>
                {u.blob && u.upload && !u.file && (
                  <button class="link-btn" onClick={() => retryUpload(u.key)}>
                    {t('common.retry')}
                  </button>
                )}
                <button class="link-btn" onClick={() => dismissUpload(u.key)}>
                  {t('file.dismiss')}
                </button>
              </div>
            ) : (
              <div class="file-dl">
                <Progress done={u.phase === 'uploading' || u.phase === 'preparing' ? u.done : 1} total={u.phase === 'uploading' || u.phase === 'preparing' ? u.total : 1} label={label} />
                {u.phase !== 'posting' && u.phase !== 'posted' && (
                  <button class="icon-btn" aria-label={t('file.cancel', { name: u.name })} title={t('file.cancel', { name: u.name })} onClick={() => cancelUpload(u.key)}>
                    <Icon name="close" size={18} />
                  </button>
                )}
              </div>
            )}
          </div>
        </div>
      </div>
    </div>
  );
}

/** hasFiles tells whether a drag carries files. */
export function hasFiles(e: DragEvent): boolean {
  return !!e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
}

/** canAttach tells whether files may be sent to a room from here. */
export function canAttach(roomID: string): boolean {
  const r = store.rooms.get(roomID);
  return !!r && r.state === 'joined';
}

/** PictureViewer shows a picture full screen, over everything: Escape, the
 * close button or a click beside the picture closes it. It is modal for the
 * keyboard too: the focus stays inside, and goes back to what opened it. */
export function PictureViewer(): JSX.Element | null {
  useTopics('viewer');
  const v = viewerOf();
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!v) return;
    const opener = document.activeElement as HTMLElement | null;
    // autoFocus does not take the focus from an element that holds it.
    box.current?.querySelector<HTMLElement>('.viewer-close')?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') closeViewer();
      if (e.key !== 'Tab' || !box.current) return;
      const stops = [...box.current.querySelectorAll<HTMLElement>('a[href], button')];
      if (!stops.length) return;
      const at = stops.indexOf(document.activeElement as HTMLElement);
      e.preventDefault();
      const next = at < 0 ? (e.shiftKey ? stops.length - 1 : 0) : (at + (e.shiftKey ? -1 : 1) + stops.length) % stops.length;
      stops[next].focus();
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      if (opener?.isConnected) opener.focus();
    };
  }, [v]);
  if (!v) return null;
  return (
    <div ref={box} class="viewer" role="dialog" aria-modal="true" aria-label={v.f.name} onClick={(e) => e.target === e.currentTarget && closeViewer()}>
      <div class="viewer-bar">
        <span class="file-name" title={v.f.name}>
          {v.f.name}
        </span>
        <a class="secondary small viewer-save" href={v.url} download={v.f.name}>
          <Icon name="download" size={16} /> {t('file.download')}
        </a>
        <button class="icon-btn viewer-close" autoFocus aria-label={t('viewer.close')} title={t('viewer.close')} onClick={closeViewer}>
          <Icon name="close" />
        </button>
      </div>
      <img src={v.url} alt={v.f.name} onClick={(e) => e.stopPropagation()} />
    </div>
  );
}
