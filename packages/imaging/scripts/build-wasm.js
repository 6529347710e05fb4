// Assembles src/pil-resample.wat into dist/pil-resample.wasm (run by the package's build).
const { readFileSync, writeFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');

async function main() {
  const wabt = await require('wabt')();
  const root = join(__dirname, '..');
  const source = join(root, 'src', 'pil-resample.wat');
  const module = wabt.parseWat(source, readFileSync(source, 'utf8'), { simd: true });
  try {
    module.validate();
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(join(root, 'dist', 'pil-resample.wasm'), module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
