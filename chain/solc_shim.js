#!/usr/bin/env node
// Stands in for a native `solc` binary so py-solc-x, brownie and slither (crytic-compile)
// compile offline with the npm compiler (solc-js). It understands what those callers send:
// `--version`; `--standard-json` on stdin (any outputSelection: ast, abi, bytecode, source
// maps...); and `<files> [remappings] --combined-json <fields>`, which crytic-compile uses when
// slither is pointed at a single file. Path flags give the folders imports are read from.
'use strict';
const fs = require('fs');
const path = require('path');

// Flags of a native solc that take a value: their value is never a source file.
const VALUED = new Set([
  '--base-path', '--include-path', '--allow-paths', '--combined-json', '--evm-version',
  '--optimize-runs', '--output-dir', '-o', '--libraries', '--metadata-hash', '--revert-strings',
  '--debug-info', '--stop-after', '--eof-version',
]);

// --combined-json field -> [standard-JSON output selection, how to read it from the output].
const COMBINED = {
  abi: ['abi', (c) => c.abi],
  bin: ['evm.bytecode.object', (c) => c.evm.bytecode.object],
  'bin-runtime': ['evm.deployedBytecode.object', (c) => c.evm.deployedBytecode.object],
  srcmap: ['evm.bytecode.sourceMap', (c) => c.evm.bytecode.sourceMap],
  'srcmap-runtime': ['evm.deployedBytecode.sourceMap', (c) => c.evm.deployedBytecode.sourceMap],
  userdoc: ['userdoc', (c) => c.userdoc],
  devdoc: ['devdoc', (c) => c.devdoc],
  hashes: ['evm.methodIdentifiers', (c) => c.evm.methodIdentifiers],
  metadata: ['metadata', (c) => c.metadata],
  'storage-layout': ['storageLayout', (c) => c.storageLayout],
  'generated-sources': ['evm.bytecode.generatedSources', (c) => c.evm.bytecode.generatedSources],
  'generated-sources-runtime': [
    'evm.deployedBytecode.generatedSources', (c) => c.evm.deployedBytecode.generatedSources],
  'opcodes': ['evm.bytecode.opcodes', (c) => c.evm.bytecode.opcodes],
};

function loadSolc() {
  // Resolve from this file's real location (the shim is reached through a symlink).
  const here = path.dirname(fs.realpathSync(__filename));
  return require(require.resolve('solc', { paths: [process.cwd(), here, path.join(here, '..')] }));
}

function parseArgs(argv) {
  const opts = {
    version: false, standardJson: false, combined: null, roots: [], files: [], remappings: [],
    optimize: false, runs: null, evmVersion: null, viaIR: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = VALUED.has(a) ? argv[++i] || '' : null;
    if (a === '--version') opts.version = true;
    else if (a === '--standard-json') opts.standardJson = true;
    else if (a === '--combined-json') opts.combined = v.split(',').filter(Boolean);
    else if (a === '--base-path' || a === '--include-path') opts.roots.push(v);
    else if (a === '--allow-paths') v.split(',').filter(Boolean).forEach((p) => opts.roots.push(p));
    else if (a === '--optimize') opts.optimize = true;
    else if (a === '--optimize-runs') opts.runs = Number(v);
    else if (a === '--evm-version') opts.evmVersion = v;
    else if (a === '--via-ir' || a === '--experimental-via-ir') opts.viaIR = true;
    else if (a.startsWith('-')) {
      // Flags a native solc accepts that change nothing here (--pretty-json, --no-color...).
    } else if (a.includes('=') && !fs.existsSync(a)) opts.remappings.push(a);
    else opts.files.push(a);
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

function compile(solc, input, roots) {
  return JSON.parse(solc.compile(JSON.stringify(input), { import: importer(roots) }));
}

// A native solc's `--combined-json`: the same compilation as standard JSON, reshaped into
// `contracts["<file>:<Name>"]` and `sources[<file>].AST`; errors on stderr and exit 1.
function combinedJson(solc, opts) {
  const unknown = opts.combined.filter((f) => !(f in COMBINED) && f !== 'ast' && f !== 'compact-format');
  if (unknown.length) fail(`solc shim: unsupported --combined-json fields: ${unknown.join(', ')}`);
  if (!opts.files.length) fail('solc shim: --combined-json needs at least one source file');
  const fields = opts.combined.filter((f) => f in COMBINED);
  const settings = {
    remappings: opts.remappings,
    optimizer: { enabled: opts.optimize, ...(opts.runs ? { runs: opts.runs } : {}) },
    outputSelection: { '*': { '*': fields.map((f) => COMBINED[f][0]), '': ['ast'] } },
  };
  if (opts.evmVersion) settings.evmVersion = opts.evmVersion;
  if (opts.viaIR) settings.viaIR = true;
  const sources = {};
  for (const f of opts.files) {
    if (!fs.existsSync(f)) fail(`"${f}" is not found.`);
    sources[f] = { content: fs.readFileSync(f, 'utf8') };
  }
  const out = compile(solc, { language: 'Solidity', sources, settings }, opts.roots);
  const errors = out.errors || [];
  errors.forEach((e) => process.stderr.write(`${e.formattedMessage || e.message}\n`));
  if (errors.some((e) => e.severity === 'error')) process.exit(1);
  const result = { contracts: {}, sources: {}, sourceList: [], version: solc.version() };
  for (const [file, contracts] of Object.entries(out.contracts || {})) {
    for (const [name, c] of Object.entries(contracts)) {
      const entry = {};
      fields.forEach((f) => { entry[f] = COMBINED[f][1](c); });
      result.contracts[`${file}:${name}`] = entry;
    }
  }
  const ordered = Object.entries(out.sources || {}).sort((a, b) => a[1].id - b[1].id);
  for (const [file, s] of ordered) {
    result.sourceList.push(file);
    result.sources[file] = opts.combined.includes('ast') ? { id: s.id, AST: s.ast } : { id: s.id };
  }
  process.stdout.write(JSON.stringify(result));
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const solc = loadSolc();
  if (opts.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (opts.combined) {
    combinedJson(solc, opts);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc shim: only --version, --standard-json and --combined-json are supported\n');
    process.exit(2);
  }
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: importer(opts.roots) });
  process.stdout.write(output);
}

main();
