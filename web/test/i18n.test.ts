import assert from 'node:assert/strict';
import { test } from 'node:test';
import { format, formatDay, keysOf, pickLang } from '../src/i18n';

test('both languages have the same keys', () => {
  assert.deepEqual(keysOf('en').sort(), keysOf('fr').sort());
});

test('plurals follow each language', () => {
  assert.equal(format('fr', 'rooms.unread', { count: 0 }), '0 message non lu');
  assert.equal(format('fr', 'rooms.unread', { count: 1 }), '1 message non lu');
  assert.equal(format('fr', 'rooms.unread', { count: 2 }), '2 messages non lus');
  assert.equal(format('en', 'rooms.unread', { count: 0 }), '0 unread messages');
  assert.equal(format('en', 'rooms.unread', { count: 1 }), '1 unread message');
  assert.equal(format('en', 'room.members', { count: 1200 }), '1,200 members');
});

test('interpolation', () => {
  assert.equal(format('en', 'tl.typing2', { a: 'Ana', b: 'Bo' }), 'Ana and Bo are typing…');
  assert.match(format('fr', 'err.email_domain_not_allowed', { domains: '@agents.gouv.fr' }), /@agents\.gouv\.fr/);
});

test('French elides de and que before a name that starts with a vowel', () => {
  for (const [key, params, want] of [
    ['verify.devices', { name: 'Alice Martin' }, 'Appareils d’Alice Martin'],
    ['verify.devices', { name: 'Émile Roux' }, 'Appareils d’Émile Roux'],
    ['verify.devices', { name: 'Bob Durand' }, 'Appareils de Bob Durand'],
    ['verify.devices', { name: 'Hélène Petit' }, 'Appareils de Hélène Petit'],
    ['notif.dm', { name: 'Inès' }, 'Message d’Inès'],
    ['rooms.invitedBy', { name: 'Yann' }, 'Invitation d’Yann'],
  ] as const) {
    assert.equal(format('fr', key, params), want);
  }
  assert.match(format('fr', 'verify.lead', { name: 'Alice' }), /celui qu’Alice voit/);
  assert.match(format('fr', 'verify.lead', { name: 'Bob' }), /celui que Bob voit/);
  assert.equal(format('en', 'verify.devices', { name: 'Alice Martin' }), 'Alice Martin’s devices');
});

test('language from the browser', () => {
  assert.equal(pickLang(['fr-FR', 'en']), 'fr');
  assert.equal(pickLang(['en-GB', 'fr']), 'en');
  assert.equal(pickLang(['de-DE', 'en-US']), 'en');
  assert.equal(pickLang(['de-DE']), 'fr');
});

test('day labels', () => {
  const now = new Date(2025, 4, 14, 15, 0).getTime();
  assert.equal(formatDay(now - 3600e3, now, 'fr'), 'Aujourd’hui');
  assert.equal(formatDay(now - 86400e3, now, 'en'), 'Yesterday');
  assert.equal(formatDay(new Date(2025, 4, 1, 9).getTime(), now, 'fr'), 'Jeudi 1 mai');
});
