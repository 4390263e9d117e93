#!/usr/bin/env node
// Stands in for a native `solc` binary so py-solc-x and brownie compile offline with the npm
// compiler (solc-js). It understands what those callers send: `--version` and
// `--standard-json` on stdin; path flags give the folders imports are read from.
'use strict';
const fs = require('fs');
const path = require('path');

function loadSolc() {
  // Resolve from this file's real location (the shim is reached through a symlink).
  const here = path.dirname(fs.realpathSync(__filename));
  return require(require.resolve('solc', { paths: [process.cwd(), here, path.join(here, '..')] }));
}

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, roots: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--version') opts.version = true;
    else if (a === '--standard-json') opts.standardJson = true;
    else if (a === '--base-path' || a === '--include-path' || a === '--allow-paths') {
      const v = argv[++i] || '';
      if (a !== '--allow-paths') opts.roots.push(v);
      else v.split(',').filter(Boolean).forEach((p) => opts.roots.push(p));
    } else if (a.startsWith('--')) {
      // Flags a native solc accepts that have no meaning for standard JSON here.
    }
  }
  return opts;
}

function importer(roots) {
  const dirs = [process.cwd(), ...roots, path.join(process.cwd(), 'node_modules')];
  return (p) => {
    for (const d of dirs) {
      const full = path.isAbsolute(p) ? p : path.resolve(d, p);
      if (fs.existsSync(full) && fs.statSync(full).isFile()) {
        return { contents: fs.readFileSync(full, 'utf8') };
      }
    }
    return { error: `File not found: ${p} (searched ${dirs.join(', ')})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const solc = loadSolc();
  if (opts.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc shim: only --version and --standard-json are supported\n');
    process.exit(2);
  }
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: importer(opts.roots) });
  process.stdout.write(output);
}

main();
