import{C as a}from"./chunk-SKVYEUEF.js";import"./chunk-M7AD2PUT.js";export{a as XWing};
