/** What the replay tests share: the checkid configuration they replay under. */

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
