/**
 * The console's one stylesheet, served from /console/style.css so that the pages' Content Security
 * Policy can forbid inline styles and every script.
 */
export const consoleStylesheet = `
:root { color-scheme: light dark; --line: #8884; --muted: #777; --accent: #2557a7; --bad: #b3261e; --good: #1e7b34; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.5rem; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header .brand { font-weight: 700; text-decoration: none; color: inherit; }
header nav { display: flex; gap: 1rem; flex: 1; flex-wrap: wrap; }
header nav a { color: inherit; text-decoration: none; padding: .2rem 0; }
header nav a[aria-current="page"] { border-bottom: 2px solid var(--accent); }
header .who { color: var(--muted); }
main { padding: 1rem 1.5rem 3rem; max-width: 72rem; }
h1 { font-size: 1.4rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; }
td.wrap { max-width: 28rem; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
form.inline { display: inline; }
form.stack { display: grid; gap: .8rem; max-width: 36rem; }
form.stack label { display: grid; gap: .25rem; }
.actions { display: flex; gap: 1rem; flex-wrap: wrap; align-items: end; margin: 1rem 0; }
.actions form { display: flex; gap: .5rem; align-items: end; }
input, select, textarea, button { font: inherit; padding: .35rem .5rem; }
button { cursor: pointer; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; }
button.secondary { background: transparent; color: inherit; border-color: var(--line); }
button.danger { background: var(--bad); border-color: var(--bad); }
button.link { background: none; border: none; color: inherit; padding: 0; text-decoration: underline; }
.state { font-weight: 600; }
.state-pending, .state-approved { color: var(--accent); }
.state-active { color: var(--good); }
.state-denied, .state-failed, .state-revoked, .severity-high { color: var(--bad); }
.muted { color: var(--muted); }
.notice { border: 1px solid var(--line); border-left: 4px solid var(--accent); padding: .6rem .9rem; margin: 1rem 0; }
.notice.error { border-left-color: var(--bad); }
.pager { margin: 1rem 0; display: flex; gap: 1rem; }
`;

/** The console's icon: a portcullis, drawn in a few lines (served as /console/icon.svg). */
export const consoleIcon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path fill="none" stroke="#2557a7" stroke-width="1.5" d="M2 2h12M3.5 2v12M6.5 2v12M9.5 2v12M12.5 2v12M2 6h12M2 10h12"/></svg>`;
