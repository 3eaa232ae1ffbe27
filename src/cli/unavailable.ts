// kompoxsvc and kompox (the PaaS server and client) come in later releases.
export function main(name: string): void {
  process.stderr.write(`${name}: not yet available in this version of Kompox; use kompoxops.\n`);
  process.exitCode = 2;
}
