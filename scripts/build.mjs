// Bundles each app into dist/<app>.mjs and writes bin/<app>, a launcher for it.
// One bundle per app keeps start-up fast and the binaries independent of node_modules layout.
import { build } from 'esbuild';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';

const apps = (await readdir('apps')).filter((app) => existsSync(`apps/${app}/src/main.ts`));

await mkdir('bin', { recursive: true });
await Promise.all(
  apps.map(async (app) => {
    await build({
      entryPoints: [`apps/${app}/src/main.ts`],
      outfile: `dist/${app}.mjs`,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      sourcemap: true,
      logLevel: 'warning',
      // Bundled CommonJS dependencies (grpc-js, pino) expect these in scope.
      banner: {
        js: [
          "import { createRequire as __durableRequire } from 'node:module';",
          "import { fileURLToPath as __durableFileUrl } from 'node:url';",
          'const require = __durableRequire(import.meta.url);',
          'const __filename = __durableFileUrl(import.meta.url);',
          "const __dirname = __durableFileUrl(new URL('.', import.meta.url));",
        ].join('\n'),
      },
    });
    const launcher = `#!/bin/sh\nexec node --enable-source-maps "$(dirname "$0")/../dist/${app}.mjs" "$@"\n`;
    await writeFile(`bin/${app}`, launcher);
    await chmod(`bin/${app}`, 0o755);
  }),
);
