/** Types for node-check.js (plain JavaScript so it runs on any Node). */
export declare const NODE_MAJOR: number;
export declare function nodeProblem(version: string, repo: string): string | null;
