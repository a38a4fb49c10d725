import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse, parseInline, plain, safeHref } from '../src/markdown';

test('emphasis, strike and code', () => {
  assert.deepEqual(parseInline('a **b** *c* ~~d~~ `e*f*`'), [
    { t: 'text', v: 'a ' },
    { t: 'b', c: [{ t: 'text', v: 'b' }] },
    { t: 'text', v: ' ' },
    { t: 'i', c: [{ t: 'text', v: 'c' }] },
    { t: 'text', v: ' ' },
    { t: 's', c: [{ t: 'text', v: 'd' }] },
    { t: 'text', v: ' ' },
    { t: 'code', v: 'e*f*' },
  ]);
});

test('snake_case and lone stars stay text', () => {
  assert.deepEqual(parseInline('snake_case_name and 2 * 3 * 4'), [{ t: 'text', v: 'snake_case_name and 2 * 3 * 4' }]);
  assert.deepEqual(parseInline('**unclosed'), [{ t: 'text', v: '**unclosed' }]);
});

test('links: explicit, bare, and unsafe schemes refused', () => {
  assert.deepEqual(parseInline('[site](https://x.fr/a)'), [{ t: 'link', href: 'https://x.fr/a', c: [{ t: 'text', v: 'site' }] }]);
  assert.deepEqual(parseInline('see https://x.fr/a.'), [
    { t: 'text', v: 'see ' },
    { t: 'link', href: 'https://x.fr/a', c: [{ t: 'text', v: 'https://x.fr/a' }] },
    { t: 'text', v: '.' },
  ]);
  assert.deepEqual(parseInline('[x](javascript:alert(1))'), [{ t: 'text', v: '[x](javascript:alert(1))' }]);
  assert.equal(safeHref('javascript:alert(1)'), '');
  assert.equal(safeHref('data:text/html,x'), '');
  assert.equal(safeHref('https://ok.fr'), 'https://ok.fr');
  const wiki = parseInline('https://fr.wikipedia.org/wiki/Relais_(x)');
  assert.equal((wiki[0] as { href: string }).href, 'https://fr.wikipedia.org/wiki/Relais_(x)');
});

test('html is just text', () => {
  assert.deepEqual(parseInline('<img src=x onerror=alert(1)>'), [{ t: 'text', v: '<img src=x onerror=alert(1)>' }]);
});

test('mentions of known people', () => {
  const opts = { mentions: [{ user: 'u-1', name: 'Hélène Martin' }] };
  assert.deepEqual(parseInline('hi @Hélène Martin!', opts), [
    { t: 'text', v: 'hi ' },
    { t: 'mention', v: 'Hélène Martin', user: 'u-1' },
    { t: 'text', v: '!' },
  ]);
  assert.deepEqual(parseInline('mail@Hélène Martin', opts), [{ t: 'text', v: 'mail@Hélène Martin' }]);
});

test('blocks: paragraphs, line breaks, quotes, code blocks', () => {
  assert.deepEqual(parse('a\nb\n\n> q\n```\nx **y**\n```'), [
    { t: 'p', c: [{ t: 'text', v: 'a' }, { t: 'br' }, { t: 'text', v: 'b' }] },
    { t: 'quote', c: [{ t: 'p', c: [{ t: 'text', v: 'q' }] }] },
    { t: 'pre', v: 'x **y**' },
  ]);
  assert.deepEqual(parse('```\nunclosed'), [{ t: 'p', c: [{ t: 'text', v: '```' }, { t: 'br' }, { t: 'text', v: 'unclosed' }] }]);
});

test('deep nesting is bounded', () => {
  const deep = '>'.repeat(50) + ' x';
  assert.ok(parse(deep));
  assert.ok(parseInline('*'.repeat(1000) + 'x' + '*'.repeat(1000)));
});

test('plain text for previews', () => {
  assert.equal(plain('**Bonjour** _à tous_\n> cité'), 'Bonjour à tous cité');
});
