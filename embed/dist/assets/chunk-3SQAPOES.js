throw new Error("this cipher suite is not part of Relais");
