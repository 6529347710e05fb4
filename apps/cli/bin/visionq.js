#!/usr/bin/env node
'use strict';
// Compiled by `npm run build` (run by `npm ci` through the root `prepare` script).
require('../dist/main.js').main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
