// The call screen (over everything, usable at 360 px), the call buttons
// of a direct conversation, and a call's entry in the timeline.

import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { calls, CallView } from '../call/call';
import { group, GroupView, MAX_GROUP_CALL } from '../call/group';
import { loadedE2E } from '../crypto';
import { t } from '../i18n';
import type { CallRecord } from '../payload';
import { store } from '../store';
import { Avatar, Icon } from './common';
import { useLang } from './hooks';

function useCall(): CallView {
  const [, set] = useState(0);
  useEffect(() => calls.subscribe(() => set((n) => n + 1)), []);
  return calls.view;
}

function duration(s: number): string {
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** callText is what a call's entry says, to its caller or its callee. */
export function callText(c: CallRecord, mine: boolean): string {
  switch (c.state) {
    case 'missed':
      return mine ? t('call.tl.missedOut') : t('call.tl.missed');
    case 'declined':
      return t('call.tl.declined');
    case 'busy':
      return t('call.tl.busy');
    default:
      return t(c.media === 'video' ? 'call.tl.endedVideo' : 'call.tl.ended', { duration: duration(c.dur ?? 0) });
  }
}

export function CallLine({ c, mine }: { c: CallRecord; mine: boolean }): JSX.Element {
  return (
    <p class={'call-line' + (c.state === 'missed' && !mine ? ' warn' : '')} data-call={c.state}>
      <Icon name={c.media === 'video' ? 'video' : 'phone'} size={14} /> {callText(c, mine)}
    </p>
  );
}

/** CallButtons start an audio or video call with the other person of a
 * direct, encrypted conversation. */
export function CallButtons({ room, peer }: { room: string; peer: string }): JSX.Element {
  const v = useCall();
  const busy = v.phase !== 'idle' && v.phase !== 'ended';
  return (
    <>
      <button class="icon-btn" data-call-start="audio" disabled={busy} onClick={() => void calls.start(room, peer, 'audio')} aria-label={t('call.start')} title={t('call.start')}>
        <Icon name="phone" />
      </button>
      <button class="icon-btn" data-call-start="video" disabled={busy} onClick={() => void calls.start(room, peer, 'video')} aria-label={t('call.startVideo')} title={t('call.startVideo')}>
        <Icon name="video" />
      </button>
    </>
  );
}

function Media({ stream, muted, class: cls }: { stream?: MediaStream; muted: boolean; class: string }): JSX.Element {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    if (ref.current && ref.current.srcObject !== (stream ?? null)) ref.current.srcObject = stream ?? null;
  });
  return <video ref={ref} class={cls} autoplay playsinline muted={muted} />;
}

/** Safety is the encrypted mark: who is on the call and whether this
 * device verified them (the safety numbers of e2e/). */
function Safety({ v }: { v: CallView }): JSX.Element {
  const name = store.name(v.peer);
  const s = loadedE2E()?.callSafety(v.room, v.peer);
  const text = s?.changed ? t('call.changed', { name }) : s?.verified ? t('call.verified', { name }) : t('call.unverified', { name });
  return (
    <div class="call-safety" data-safety={s?.changed ? 'changed' : s?.verified ? 'verified' : 'unverified'}>
      <span class="chip" data-call-encrypted>
        <Icon name="lock" size={12} /> {t('call.encrypted')}
      </span>
      <span class={'call-safety-text' + (s?.changed ? ' warn' : '')}>
        <Icon name={s?.verified && !s.changed ? 'shield' : 'alert'} size={12} /> {text}
      </span>
    </div>
  );
}

function Timer({ since }: { since: number }): JSX.Element {
  const [, tick] = useState(0);
  useEffect(() => {
    const i = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(i);
  }, []);
  return <span class="call-timer" data-call-timer>{duration(Math.max(0, Math.round((Date.now() - since) / 1000)))}</span>;
}

function Devices(): JSX.Element | null {
  const [list, setList] = useState<MediaDeviceInfo[]>([]);
  const audio = useRef<HTMLAudioElement | null>(null);
  useEffect(() => {
    void navigator.mediaDevices?.enumerateDevices().then(setList).catch(() => {});
  }, []);
  const mics = list.filter((d) => d.kind === 'audioinput');
  const outs = list.filter((d) => d.kind === 'audiooutput');
  if (!mics.length && !outs.length) return null;
  return (
    <div class="call-devices">
      {mics.length > 1 && (
        <label>
          {t('call.microphone')}
          <select onChange={(e) => void calls.useMicrophone((e.target as HTMLSelectElement).value)}>
            {mics.map((d, i) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.label || t('call.microphone') + ' ' + (i + 1)}
              </option>
            ))}
          </select>
        </label>
      )}
      {outs.length > 1 && (
        <label>
          {t('call.speaker')}
          <select
            onChange={(e) => {
              const id = (e.target as HTMLSelectElement).value;
              for (const el of Array.from(document.querySelectorAll<HTMLMediaElement & { setSinkId?: (id: string) => Promise<void> }>('.call video.call-remote')))
                void el.setSinkId?.(id).catch(() => {});
              audio.current = null;
            }}
          >
            {outs.map((d, i) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.label || t('call.speaker') + ' ' + (i + 1)}
              </option>
            ))}
          </select>
        </label>
      )}
    </div>
  );
}

/** CallScreen shows the call of this device, if any. */
export function CallScreen(): JSX.Element | null {
  useLang();
  const v = useCall();
  if (v.phase === 'idle') return null;
  const name = store.name(v.peer);
  const video = v.media === 'video';
  // The other side's video, once it has any (a camera turned on in an
  // audio call comes later, or never).
  const remoteVideo = !!v.remote?.getVideoTracks().length;
  let status = '';
  switch (v.phase) {
    case 'incoming':
      status = t(video ? 'call.incomingVideo' : 'call.incomingAudio');
      break;
    case 'outgoing':
      status = t('call.ringing');
      break;
    case 'connecting':
      status = t('call.connecting');
      break;
    case 'ended':
      status = t(('call.end.' + (v.reason ?? 'hangup')) as 'call.end.hangup', { name });
      break;
  }
  if (v.reconnecting) status = t('call.reconnecting');
  return (
    <div class={'call call-' + v.phase + (v.screen ? ' call-with-screen' : '')} role="dialog" aria-label={t(video ? 'call.video' : 'call.audio')} data-call-phase={v.phase} data-call-reason={v.reason ?? ''}>
      <div class="call-stage">
        {remoteVideo && v.phase !== 'ended' && <Media stream={v.remote} muted={false} class="call-remote" />}
        {!remoteVideo && v.phase !== 'ended' && <Media stream={v.remote} muted={false} class="call-remote call-audio-only" />}
        {(!remoteVideo || v.phase !== 'active') && (
          <div class="call-who">
            <Avatar id={v.peer} name={name} size={72} />
            <h2>{name}</h2>
          </div>
        )}
        {video && v.local && v.phase !== 'ended' && <Media stream={v.local} muted={true} class="call-local" />}
      </div>
      {v.screen && v.phase === 'active' && (
        <figure class="call-screen-share" data-call-screen>
          <Media stream={v.screen} muted={true} class="call-screen" />
          <figcaption>{t('call.theirScreen', { name })}</figcaption>
        </figure>
      )}
      {v.sharing && v.phase === 'active' && (
        <p class="call-sharing" data-call-sharing>
          <Icon name="lock" size={12} /> {t('call.sharing')}
        </p>
      )}
      {v.shareRefused && v.phase === 'active' && <p class="call-status warn">{t('call.shareRefused')}</p>}
      <p class={'call-status' + (v.phase === 'ended' && v.reason !== 'hangup' ? ' warn' : '')} role="status" data-call-status>
        {v.phase === 'active' && !v.reconnecting ? <Timer since={v.since} /> : status}
      </p>
      {v.phase !== 'ended' && <Safety v={v} />}
      {v.phase === 'active' && <Devices />}
      <div class="call-controls">
        {v.phase === 'incoming' && (
          <>
            <button class="call-btn accept" data-call-action="accept" onClick={() => void calls.accept()}>
              <Icon name="phone" /> {t('call.accept')}
            </button>
            <button class="call-btn hang" data-call-action="decline" onClick={() => calls.decline()}>
              <Icon name="close" /> {t('call.decline')}
            </button>
          </>
        )}
        {(v.phase === 'outgoing' || v.phase === 'connecting' || v.phase === 'active') && (
          <>
            <button class={'call-btn' + (v.muted ? ' on' : '')} data-call-action="mute" aria-pressed={v.muted} onClick={() => calls.toggleMute()}>
              <Icon name="mic" /> {v.muted ? t('call.unmute') : t('call.mute')}
            </button>
            {(video || v.phase === 'active') && (
              <button class={'call-btn' + (video && !v.camera ? ' on' : '')} data-call-action="camera" aria-pressed={video && !v.camera} onClick={() => void calls.toggleCamera()}>
                <Icon name="video" /> {v.camera ? t('call.cameraOff') : t('call.cameraOn')}
              </button>
            )}
            {v.phase === 'active' && calls.canShare() && (
              <button
                class={'call-btn' + (v.sharing ? ' on' : '')}
                data-call-action="share"
                aria-pressed={!!v.sharing}
                onClick={() => (v.sharing ? calls.stopSharing() : void calls.shareScreen())}
              >
                <Icon name="screen" /> {v.sharing ? t('call.stopShare') : t('call.share')}
              </button>
            )}
            <button class="call-btn hang" data-call-action="hangup" onClick={() => void calls.hangup()}>
              <Icon name="phone" /> {t('call.hangup')}
            </button>
          </>
        )}
        {v.phase === 'ended' && (
          <button class="call-btn" data-call-action="close" onClick={() => calls.dismiss()}>
            {t('call.close')}
          </button>
        )}
      </div>
    </div>
  );
}

function useGroup(): GroupView {
  const [, set] = useState(0);
  useEffect(() => group.subscribe(() => set((n) => n + 1)), []);
  return group.view;
}

/** GroupCallButton starts a call of an encrypted group of at most
 * MAX_GROUP_CALL joined members. */
export function GroupCallButton({ room, members }: { room: string; members: number }): JSX.Element | null {
  const g = useGroup();
  if (members > MAX_GROUP_CALL || members < 2) return null;
  return (
    <button class="icon-btn" data-call-start="group" disabled={g.phase !== 'idle'} onClick={() => void group.start(room)} aria-label={t('call.group')} title={t('call.group')}>
      <Icon name="phone" />
    </button>
  );
}

/** GroupCallScreen shows this device's group call, if any. */
export function GroupCallScreen(): JSX.Element | null {
  useLang();
  const g = useGroup();
  if (g.phase === 'idle') return null;
  const room = store.rooms.get(g.room);
  return (
    <div class="call call-group" role="dialog" aria-label={t('call.group')} data-group-phase={g.phase} data-group-reason={g.reason ?? ''}>
      <div class="call-who">
        <Avatar id={g.room} name={room?.name ?? ''} group size={72} />
        <h2>{room?.name}</h2>
      </div>
      <p class="call-status" role="status">
        {g.phase === 'incoming' ? t('call.groupIncoming', { name: store.name(g.from) }) : g.phase === 'ended' ? t(g.reason === 'missed' ? 'call.end.missed' : g.reason === 'removed' ? 'call.end.removed' : 'call.end.mic') : t('call.groupCount', { count: g.participants.length + 1 })}
      </p>
      {g.phase === 'active' && (
        <>
          <span class="chip" data-call-encrypted>
            <Icon name="lock" size={12} /> {t('call.groupEncrypted')}
          </span>
          <ul class="call-people">
            {g.participants.map((p) => (
              <li key={p.device} data-participant={p.user} data-state={p.state}>
                {store.name(p.user)} · {p.state === 'connected' ? t('call.connected') : t('call.connecting')}
              </li>
            ))}
          </ul>
        </>
      )}
      <div class="call-controls">
        {g.phase === 'incoming' && (
          <>
            <button class="call-btn accept" data-group-action="accept" onClick={() => void group.accept()}>
              <Icon name="phone" /> {t('call.accept')}
            </button>
            <button class="call-btn hang" data-group-action="decline" onClick={() => group.decline()}>
              <Icon name="close" /> {t('call.decline')}
            </button>
          </>
        )}
        {g.phase === 'active' && (
          <>
            <button class={'call-btn' + (g.muted ? ' on' : '')} data-group-action="mute" aria-pressed={g.muted} onClick={() => group.toggleMute()}>
              <Icon name="mic" /> {g.muted ? t('call.unmute') : t('call.mute')}
            </button>
            <button class="call-btn hang" data-group-action="leave" onClick={() => group.leave()}>
              <Icon name="phone" /> {t('call.leave')}
            </button>
          </>
        )}
        {g.phase === 'ended' && (
          <button class="call-btn" data-group-action="close" onClick={() => group.decline()}>
            {t('call.close')}
          </button>
        )}
      </div>
    </div>
  );
}
