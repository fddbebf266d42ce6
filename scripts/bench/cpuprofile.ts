/**
 * `BENCH_PROFILE=1 make bench` runs the processor from source under `node --cpu-prof`;
 * this reads the profile it writes on exit and says where its CPU went: self time by
 * package (or engine source file) and the heaviest functions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  /** Profiled ms, idle excluded. */
  busyMs: number;
  byPlace: { place: string; ms: number; share: number }[];
  byFunction: { fn: string; place: string; ms: number; share: number }[];
}

/** Where a frame's code lives: an npm package, an engine file, Node itself, or V8's own work. */
function placeOf(url: string, fn: string, root: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1] as string;
  return relative(root, path);
}

/** The main thread's `.cpuprofile` in `dir` (a loader thread writes one too), summarised; undefined when there is none. */
export function summariseProfile(dir: string, root: string, top = 12): ProfileSummary | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  } catch {
    return undefined;
  }
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread.
  const name = files.filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)).pop() ?? files[files.length - 1];
  if (name === undefined) return undefined;
  const file = join(dir, name);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const places = new Map<string, number>();
  const functions = new Map<string, { place: string; us: number }>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = nodes.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busyUs += us;
    const place = placeOf(url, functionName, root);
    places.set(place, (places.get(place) ?? 0) + us);
    const key = `${functionName || '(anonymous)'}\u0000${place}${url === '' ? '' : `:${lineNumber + 1}`}`;
    const entry = functions.get(key) ?? { place, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const share = (us: number) => (busyUs > 0 ? us / busyUs : 0);
  return {
    file,
    busyMs: busyUs / 1000,
    byPlace: [...places]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([place, us]) => ({ place, ms: us / 1000, share: share(us) })),
    byFunction: [...functions]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([key, { us }]) => {
        const [fn = '', where = ''] = key.split('\u0000');
        return { fn, place: where, ms: us / 1000, share: share(us) };
      }),
  };
}
