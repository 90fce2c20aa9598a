'use strict';
// The compiled addon, or null when it was not built (build.cjs) or cannot load here.
let addon = null;
try {
  addon = require('./build/Release/gq_spawn.node');
} catch {
  addon = null;
}
module.exports = addon;
