// Entry point: language, CSP violation reporting, service worker, render.

import './styles.css';
import { render } from 'preact';
import { loadNodeName, setUnread, updateTitle } from './brand';
import { Lang, pickLang, setLang } from './i18n';
import { store } from './store';
import { App } from './ui/App';

const saved = localStorage.getItem('relais.lang') as Lang | null;
setLang(saved === 'fr' || saved === 'en' ? saved : pickLang(navigator.languages ?? [navigator.language]));
document.documentElement.lang = saved ?? pickLang(navigator.languages ?? [navigator.language]);

// A violation of the Content-Security-Policy is a bug: say it loudly so
// that tests catch it.
document.addEventListener('securitypolicyviolation', (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
});

if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch(() => {});
  });
}

updateTitle();
loadNodeName();
store.subscribe('rooms', () => setUnread(store.unreadTotal()));

render(<App />, document.getElementById('app')!);
