#!/usr/bin/env node
// The checkid command. It runs the TypeScript sources directly, which needs Node >= 22.18; run
// it through npm ("npx checkid ...") so the Node pinned in node_modules/.bin comes first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `checkid needs Node >= 22.18, this is ${process.version}.\n` +
      'Run "npm install" in the checkid directory, then "npx checkid ..." (npx puts the pinned Node first on PATH).\n',
  );
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
