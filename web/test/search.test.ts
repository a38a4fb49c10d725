import assert from 'node:assert/strict';
import { test } from 'node:test';
import { match, parseQuery, pieces, tokens } from '../src/search';

test('words are folded and split as the node does', () => {
  assert.deepEqual(
    tokens("😀 Réunion: l'ŒUVRE").map((t) => t.word),
    ['reunion', 'l', 'oeuvre'],
  );
  assert.deepEqual(tokens('😀 Réunion')[0], { word: 'reunion', start: 3, end: 10 });
});

test('every word must match, the last as a prefix unless a space follows', () => {
  const body = '😀 Réunion budgétaire du NŒUD';
  const q = parseQuery('budgetaire reun')!;
  assert.deepEqual(match(q, body), [[3, 10], [11, 21]]);
  assert.equal(match(parseQuery('reun ')!, body), null);
  assert.equal(match(parseQuery('budget reunion')!, body), null);
  assert.deepEqual(match(parseQuery('noeud')!, body), [[25, 29]]);
  assert.equal(parseQuery(' !? '), null);
  assert.equal(parseQuery('a b c d e f g h i'), null);
});

test('pieces mark the matching words', () => {
  assert.deepEqual(pieces('ab cd', [[3, 5]]), [
    { text: 'ab ', marked: false },
    { text: 'cd', marked: true },
  ]);
});
