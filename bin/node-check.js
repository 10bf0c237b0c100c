// Plain JavaScript on purpose: this file runs on any Node, before any .ts file is loaded, so an old Node
// gets a sentence saying what to do instead of a syntax error from a TypeScript file.

/** The Node major segsync runs on (type stripping, and jsforce 3 / @hubspot/api-client 14 / p-retry 9). */
export const NODE_MAJOR = 24;

/** null when `version` (process.versions.node) can run segsync, else what to tell the user. */
export function nodeProblem(version, repo) {
  const major = Number(String(version).split('.')[0]);
  if (major >= NODE_MAJOR) return null;
  return `segsync needs Node ${NODE_MAJOR} (this is Node ${version}).\n` +
    `  fix: run \`npm start\` once in ${repo}: it installs Node ${NODE_MAJOR} into .tools/ and the \`segsync\` command that uses it\n` +
    `  or:  install Node ${NODE_MAJOR} (https://nodejs.org, nvm install ${NODE_MAJOR}) and put it first on PATH\n`;
}
