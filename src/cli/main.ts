/** Entry point of the `tide` command (bin/tide.js runs it, compiled in dist/ or through tsx). */
import { main } from './program.ts';

process.exitCode = await main(process.argv.slice(2));
