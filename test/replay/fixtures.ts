/** What the replay tests (and fuzz/replay.ts) share: the configuration they replay under, an mbox split in memory. */
import { type MboxItem, type MboxOptions, MboxSplitter } from '../../src/replay/mbox.ts';

/**
 * checkid.yaml for a replay: the registry and DNS list zones of the tests' DNS data (bl.example
 * at weight 1 under a threshold of 2: listed alone does not reject), and the scripted SIQ server.
 */
export function replayConfigYaml(siqAddress: string, tagScore: number): string {
  return `authserv_id: mx.receiver.example
ratings:
  registries: [{ zone: registry.example }]
prescreen:
  dnsbl: [{ zone: bl.example, weight: 1 }]
  threshold: 2
siq:
  servers: ["${siqAddress}"]
  tag_score: ${tagScore}
`;
}

/** The items of an mbox in memory, fed to the splitter in pieces cut at the offsets `cuts` (ascending). */
export function splitMbox(data: Buffer, options: MboxOptions = {}, cuts: number[] = []): MboxItem[] {
  const s = new MboxSplitter(options);
  const out: MboxItem[] = [];
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    out.push(...s.push(data.subarray(at, cut)));
    at = cut;
  }
  out.push(...s.end());
  return out;
}
