#!/usr/bin/env node
// Compile the addon with node-gyp (npm's own, which npm names in npm_config_node_gyp for install
// scripts). It is optional: without a C compiler the build fails, this prints one warning and
// exits 0, and gq-agent starts commands with Node's child_process instead (same behaviour,
// slower for short tasks).
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

if (process.platform === 'win32') process.exit(0);
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp && existsSync(gyp) ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const r = spawnSync(cmd, args, { cwd: __dirname, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0 || !existsSync(join(__dirname, 'build', 'Release', 'gq_spawn.node'))) {
  const why = r.error ? r.error.message : (r.stderr || '').split('\n').filter((l) => /error/i.test(l)).slice(0, 3).join(' | ');
  console.warn(`@gq/spawn: the optional native addon was not built (${why || `exit ${r.status}`}); gq-agent will start commands with Node's child_process (slower for many short tasks). Install a C compiler and run npm rebuild @gq/spawn to build it.`);
}
