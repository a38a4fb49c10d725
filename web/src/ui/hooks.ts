// Hooks that tie components to the store, the language and the route.

import { useEffect, useState } from 'preact/hooks';
import { nodeName, onNodeName } from '../brand';
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

/** useNodeName returns the node's name and re-renders the component
 * when it becomes known, also if that was between the render and the
 * subscription. */
export function useNodeName(): string {
  const [name, set] = useState(nodeName());
  useEffect(() => {
    set(nodeName());
    return onNodeName(() => set(nodeName()));
  }, []);
  return name;
}

/** fold lowercases and strips accents, for searching names. */
export function fold(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}
