import{C as a}from"./chunk-JGUNBZTV.js";import"./chunk-M7AD2PUT.js";export{a as XWing};
