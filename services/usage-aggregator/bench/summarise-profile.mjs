/* global process, console */
// Summarises a .cpuprofile by self time (and by file): `node summarise-profile.mjs file.cpuprofile [top]`.
import { readFileSync } from 'node:fs';

const profile = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const top = Number(process.argv[3] ?? 40);
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const byFn = new Map();
const byFile = new Map();
let total = 0;
for (const node of profile.nodes) {
  const t = dt.get(node.id) ?? 0;
  total += t;
  const f = node.callFrame;
  const file = f.url.replace(/^.*node_modules\//, 'nm/').replace(/^file:\/\/\/work\/main\//, '');
  const key = `${f.functionName || '(anon)'} ${file}:${f.lineNumber + 1}`;
  byFn.set(key, (byFn.get(key) ?? 0) + t);
  const pkg = file.startsWith('nm/')
    ? file
        .split('/')
        .slice(0, file.split('/')[1].startsWith('@') ? 3 : 2)
        .join('/')
    : file;
  byFile.set(pkg, (byFile.get(pkg) ?? 0) + t);
}
const show = (m) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([k, t]) =>
      console.log(
        `${(t / 1000).toFixed(0).padStart(7)} ms ${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`,
      ),
    );
console.log(`total ${(total / 1000).toFixed(0)} ms`);
show(byFn);
console.log('--- by file/package');
show(byFile);
