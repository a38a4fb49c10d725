// Hooks that tie components to the store, the language and the route.

import { useEffect, useState } from 'preact/hooks';
import { onNodeName } from '../brand';
import { onLangChange } from '../i18n';
import { store } from '../store';

/** useTopics re-renders the component when one of the topics changes. */
export function useTopics(...topics: string[]): void {
  const [, set] = useState(0);
  useEffect(() => {
    const offs = topics.map((tp) => store.subscribe(tp, () => set((n) => n + 1)));
    return () => offs.forEach((f) => f());
  }, [topics.join('|')]);
}

export function useLang(): void {
  const [, set] = useState(0);
  useEffect(() => onLangChange(() => set((n) => n + 1)), []);
}

/** useNodeName re-renders the component when the node's name is known. */
export function useNodeName(): void {
  const [, set] = useState(0);
  useEffect(() => onNodeName(() => set((n) => n + 1)), []);
}

/** fold lowercases and strips accents, for searching names. */
export function fold(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}
